"""The ``zsched`` command. Run ``zsched --help``, or ``zsched COMMAND --help`` for one command."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from datetime import datetime
from typing import Any

import msgspec

from .errors import ZschedError
from .models import Notification
from .settings import Settings, parse_duration_ms
from .worker import Worker

EPILOG = """\
examples:
  zsched serve                                   run the worker on the embedded server (./.zsched)
  zsched schedule --to alice --title Hi --message "Stand-up in 5" --in 2s
  zsched status 1                                see where notification 1 is
  zsched cancel 1                                cancel it while it is pending
  zsched stats                                   counts per status, next due, overdue lag
  redis-cli -p $(cat .zsched/port) ZRANGE zsched:{p0}:due 0 9 WITHSCORES

With no --redis-url (or ZSCHED_REDIS_URL), every command uses the embedded valkey-server whose data
lives in --data-dir: a running one is reused, otherwise one is started for the command.
"""


def _parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="zsched", description="Schedule notifications for a future time and deliver them when due.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--redis-url", help="Redis to use (env ZSCHED_REDIS_URL); default: the embedded server")
    common.add_argument("--data-dir", help="embedded server's data folder (env ZSCHED_DATA_DIR; default .zsched)")
    common.add_argument("--prefix", help="key prefix (env ZSCHED_PREFIX; default zsched)")
    common.add_argument("--partitions", type=int, help="hash-tagged partitions (env ZSCHED_PARTITIONS; default 1)")
    common.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for name in ("serve", "worker"):
        cmd = sub.add_parser(name, parents=[common], help=(
            "run zsched: the worker delivering due notifications" if name == "serve"
            else "run only the worker loop (claim -> deliver -> ack/retry)"))
        cmd.add_argument("--batch", type=int, help="most notifications claimed per call (default 100)")
        cmd.add_argument("--lease-ms", type=int, help="how long a claim is owned before reap (default 30000)")

    cmd = sub.add_parser("schedule", parents=[common], help="schedule a notification for one or more recipients",
                         description="Schedule one notification per recipient, due --at a time or --in a delay.")
    cmd.add_argument("--to", action="append", required=True, metavar="RECIPIENT",
                     help="recipient id; repeat for several")
    cmd.add_argument("--title", required=True)
    cmd.add_argument("--message", required=True)
    when = cmd.add_mutually_exclusive_group(required=True)
    when.add_argument("--at", help="ISO 8601 time with offset, e.g. 2025-12-28T10:00:00Z")
    when.add_argument("--in", dest="delay", help="delay from now, e.g. 2s, 5m, 1h30m")
    cmd.add_argument("--type", default="system", help="notification type (default system)")
    cmd.add_argument("--priority", default="normal", choices=["low", "normal", "high", "urgent"])
    cmd.add_argument("--data", help="a JSON object carried with the notification")
    cmd.add_argument("--idempotency-key", help="a retried call with the same key creates nothing new")
    cmd.add_argument("--json", action="store_true", help="print the result as JSON")

    for name, text in (("status", "show one notification"), ("cancel", "cancel a pending notification")):
        cmd = sub.add_parser(name, parents=[common], help=text)
        cmd.add_argument("id", type=int, help="notification id")
        cmd.add_argument("--json", action="store_true", help="print JSON")

    cmd = sub.add_parser("list", parents=[common], help="a recipient's notifications, newest first")
    cmd.add_argument("recipient")
    cmd.add_argument("--status", choices=["pending", "processing", "sent", "cancelled", "failed"])
    cmd.add_argument("--limit", type=int, default=20)
    cmd.add_argument("--json", action="store_true", help="print JSON")

    cmd = sub.add_parser("stats", parents=[common], help="counts per status, totals, next due, overdue lag")
    cmd.add_argument("--json", action="store_true", help="print JSON")

    sub.add_parser("bench", help="measure throughput, lateness and memory against a raw-Redis baseline",
                   add_help=False)  # its own flags: zsched bench --help
    return top


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(redis_url=args.redis_url, data_dir=args.data_dir, prefix=args.prefix,
                             partitions=args.partitions, batch=getattr(args, "batch", None),
                             lease_ms=getattr(args, "lease_ms", None))


def _show(value: Any, as_json: bool) -> None:
    if as_json:
        print(msgspec.json.encode(value).decode())
    elif isinstance(value, Notification):
        for field in ("id", "recipient", "title", "scheduled_status", "scheduled_at", "attempts", "created_at",
                      "sent_at", "cancelled_at", "failed_at", "last_error"):
            item = getattr(value, field)
            if item is not None:
                print(f"{field:>17}: {item.isoformat() if isinstance(item, datetime) else item}")
    else:
        print(json.dumps(msgspec.to_builtins(value), indent=2))


async def _work(settings: Settings, announce: bool) -> None:
    scheduler = settings.async_scheduler()
    worker = Worker(scheduler, batch=settings.batch, lease_ms=settings.lease_ms)
    worker.install_signal_handlers()
    if announce:
        where = scheduler.server.url if scheduler.server else settings.redis_url
        print(f"zsched worker running on {where} (prefix {settings.prefix!r}); Ctrl-C stops it.", flush=True)
        if scheduler.server is not None:
            print(f"  inspect: redis-cli -p {scheduler.server.port} ZRANGE "
                  f"'{settings.prefix}:{{p0}}:due' 0 -1 WITHSCORES", flush=True)
        print('  try:     zsched schedule --to alice --title Hello --message "first one" --in 2s', flush=True)
    try:
        await worker.run()
    finally:
        await scheduler.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``zsched`` console script; returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:
        return _bench(argv[1:])
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        logging.getLogger("zsched.worker").setLevel(logging.INFO)
    try:
        settings = _settings(args)
        if args.command in ("serve", "worker"):
            asyncio.run(_work(settings, announce=True))
            return 0
        with settings.scheduler() as zs:
            if args.command == "schedule":
                data = json.loads(args.data) if args.data else None
                when: dict[str, Any] = (
                    {"at": datetime.fromisoformat(args.at.replace("Z", "+00:00"))} if args.at
                    else {"delay": parse_duration_ms(args.delay) / 1000})
                result = zs.schedule(args.to, args.title, args.message, type=args.type, priority=args.priority,
                                     data=data, idempotency_key=args.idempotency_key, **when)
                if args.json:
                    _show(result, True)
                else:
                    ids = ", ".join(map(str, result.notification_ids))
                    print(f"scheduled {result.count} notification(s) for {result.scheduled_at.isoformat()}: {ids}")
            elif args.command == "status":
                _show(zs.status(args.id), args.json)
            elif args.command == "cancel":
                _show(zs.cancel(args.id), args.json)
            elif args.command == "list":
                page = zs.list_for(args.recipient, status=args.status, limit=args.limit)
                if args.json:
                    _show(page, True)
                for n in [] if args.json else page.items:
                    print(f"{n.id:>8}  {n.scheduled_status:<10} {n.scheduled_at.isoformat()}  {n.title}")
            elif args.command == "stats":
                _show(zs.stats(), args.json)
        return 0
    except (ZschedError, ValueError) as exc:
        print(f"zsched: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _bench(argv: list[str]) -> int:
    try:
        from bench.runner import main as bench_main  # the benchmarks live beside the package, in a checkout
    except ImportError:
        print("zsched: error: zsched bench needs the source checkout (the bench/ folder); run it from there, "
              "e.g. git clone ... && make bench", file=sys.stderr)
        return 2
    return bench_main(argv)


if __name__ == "__main__":
    sys.exit(main())
