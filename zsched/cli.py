"""The ``zsched`` command. Run ``zsched --help``, or ``zsched COMMAND --help`` for one command."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import signal
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec

from . import cli_dead
from .channels import router_from_settings
from .client import Scheduler
from .errors import ZschedError
from .models import Notification, ScheduleResult
from .progress import Progress
from .settings import Settings, parse_duration_ms
from .validation import MAX_RECIPIENTS
from .worker import Worker

EPILOG = """\
examples:
  zsched serve                                   HTTP API + worker on 127.0.0.1:8000, embedded server (./.zsched)
  zsched token create --user alice               make an API token (printed once, on the last line)
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
            "run zsched: the HTTP API and the worker delivering due notifications, in one process"
            if name == "serve" else "run only the worker loop (claim -> deliver -> ack/retry)"))
        cmd.add_argument("--batch", type=int, help="most notifications claimed per call (default 100)")
        cmd.add_argument("--lease-ms", type=int, help="how long a claim is owned before reap (default 30000)")
        if name == "serve":
            cmd.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
            cmd.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
            cmd.add_argument("--no-worker", action="store_true", help="run the API alone, without the worker")
            cmd.add_argument("--rate-per-s", type=float, help="API requests per second per token (default 10)")
            cmd.add_argument("--rate-burst", type=int, help="API requests a token may burst (default 50)")

    token = sub.add_parser("token", help="create, list or revoke API tokens").add_subparsers(
        dest="token_command", required=True, metavar="ACTION")
    cmd = token.add_parser("create", parents=[common], help="create a token; it is printed once, on the last line")
    cmd.add_argument("--user", required=True, help="the user id the token acts as (a recipient id)")
    cmd.add_argument("--scope", action="append", default=[], metavar="SCOPE",
                     help="grant a scope; schedule:any lets it schedule for other recipients (repeatable)")
    cmd.add_argument("--admin", action="store_true", help="may see and change every notification, and stats")
    cmd.add_argument("--name", help="a note for `zsched token list`, e.g. billing-service")
    cmd = token.add_parser("list", parents=[common], help="every token's id, user and scopes (never a secret)")
    cmd.add_argument("--json", action="store_true", help="print JSON")
    cmd = token.add_parser("revoke", parents=[common], help="revoke a token by its id (from list) or the token")
    cmd.add_argument("token", help="the id shown by `zsched token list`, or the token itself")

    cmd = sub.add_parser("schedule", parents=[common], help="schedule a notification for one or more recipients",
                         description="Schedule one notification per recipient, due --at a time or --in a delay.")
    cmd.add_argument("--to", action="append", default=[], metavar="RECIPIENT",
                     help="recipient id; repeat for several")
    cmd.add_argument("--to-file", metavar="FILE",
                     help="recipient ids, one per line ('-' reads stdin); any number, sent in calls of 10,000 "
                          "with a progress bar. With --idempotency-key a failed run can simply be run again")
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

    cli_dead.add_parser(sub, common)
    cmd = sub.add_parser("stats", parents=[common], help="counts per status, totals, next due, overdue lag")
    cmd.add_argument("--json", action="store_true", help="print JSON")

    sub.add_parser("bench", help="measure throughput, lateness and memory against a raw-Redis baseline",
                   add_help=False)  # its own flags: zsched bench --help
    return top


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(redis_url=args.redis_url, data_dir=args.data_dir, prefix=args.prefix,
                             partitions=args.partitions, batch=getattr(args, "batch", None),
                             lease_ms=getattr(args, "lease_ms", None), rate_per_s=getattr(args, "rate_per_s", None),
                             rate_burst=getattr(args, "rate_burst", None))


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
    delivery = router_from_settings(settings, scheduler.redis, scheduler.core.keys)
    worker = Worker(scheduler, delivery, batch=settings.batch, lease_ms=settings.lease_ms)
    worker.install_signal_handlers()
    if announce:
        where = scheduler.server.url if scheduler.server else settings.redis_url
        print(f"zsched worker running on {where} (prefix {settings.prefix!r}); Ctrl-C stops it.", flush=True)
        _hints(settings, scheduler.server.port if scheduler.server else None, http=None)
    try:
        await worker.run()
    finally:
        await delivery.aclose()
        await scheduler.close()


def _serve(settings: Settings, host: str, port: int, run_worker: bool) -> int:
    import uvicorn

    from .app import create_app

    server = settings.server()  # owned here, so it outlives the app and stops (AOF flushed) after it
    try:
        if server is not None:
            settings = msgspec.structs.replace(settings, redis_url=server.url)
        app = create_app(settings, run_worker=run_worker)
        where = f"the embedded server in {server.data_dir}" if server is not None else settings.redis_url
        print(f"zsched serving http://{host}:{port} (API + WebSocket{' + worker' if run_worker else ''}) on "
              f"{where}, prefix {settings.prefix!r}; docs at http://{host}:{port}/docs. Ctrl-C stops it.",
              flush=True)
        _hints(settings, server.port if server is not None else None, http=f"{host}:{port}")
        # uvicorn re-raises the signal that stopped it once shutdown is done; exiting through SystemExit
        # instead of dying of SIGTERM lets the embedded server below be stopped cleanly.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        uvicorn.run(app, host=host, port=port, log_level="info", lifespan="on", ws_per_message_deflate=False)
    except KeyboardInterrupt:
        pass
    finally:
        if server is not None:
            server.stop()
    return 0


def _hints(settings: Settings, port: int | None, http: str | None) -> None:
    """What to type next: print it where the user is looking when zsched starts."""
    command = "zsched" if shutil.which("zsched") else str(Path(sys.executable).parent / "zsched")
    lines = [f'schedule:  {command} schedule --to alice --title Hello --message "first one" --in 2s',
             f"status:    {command} status 1"]
    if http is not None:
        lines += [f"token:     TOKEN=$({command} token create --user alice | tail -n 1)",
                  f'listen:    {Path(sys.executable)} -m websockets "ws://{http}/ws?token=$TOKEN"']
    if port is not None:
        lines.append(f"inspect:   redis-cli -p {port} ZRANGE '{settings.prefix}:{{p0}}:due' 0 -1 WITHSCORES")
    print("\n".join(f"  {line}" for line in lines), flush=True)


def _token(settings: Settings, args: argparse.Namespace) -> int:
    from .auth import TokenStore

    store = TokenStore(settings.prefix)
    with settings.scheduler() as zs:
        if args.token_command == "create":
            token, p = store.create(zs.redis, args.user, scopes=tuple(args.scope), admin=args.admin, name=args.name)
            print(f"created token {p.id} for user {p.user!r} (scopes: {', '.join(p.scopes) or 'none'}; "
                  f"admin: {'yes' if p.admin else 'no'})")
            print("it is shown only this once; send it as 'Authorization: Token <token>':")
            print(token)
        elif args.token_command == "list":
            principals = store.list(zs.redis)
            if args.json:
                _show(principals, True)
            for p in [] if args.json else principals:
                made = datetime.fromtimestamp(p.created_at / 1000).isoformat(timespec="seconds")
                print(f"{p.id}  user={p.user}  scopes={','.join(p.scopes) or '-'}  admin={'yes' if p.admin else 'no'}"
                      f"  created={made}{f'  name={p.name}' if p.name else ''}")
        elif not store.revoke(zs.redis, args.token):
            print(f"zsched: error: no single token matches {args.token!r}; see `zsched token list` for ids",
                  file=sys.stderr)
            return 1
        else:
            print("revoked")
    return 0


def _recipients(args: argparse.Namespace) -> list[str]:
    people = list(args.to)
    if args.to_file:
        with (sys.stdin if args.to_file == "-" else open(args.to_file, encoding="utf-8")) as lines:
            people += [line.strip() for line in lines if line.strip()]
    if not people:
        raise ValueError("give recipients with --to ID (repeatable) or --to-file FILE")
    return list(dict.fromkeys(people))


def _schedule(zs: Scheduler, args: argparse.Namespace) -> None:
    """One call per 10,000 recipients (the per-call limit); with --in, each call's delay runs from its own start."""
    people = _recipients(args)
    data = json.loads(args.data) if args.data else None
    when: dict[str, Any] = ({"at": datetime.fromisoformat(args.at.replace("Z", "+00:00"))} if args.at
                            else {"delay": parse_duration_ms(args.delay) / 1000})
    chunks = [people[i:i + MAX_RECIPIENTS] for i in range(0, len(people), MAX_RECIPIENTS)]
    ids: list[int] = []
    result: ScheduleResult | None = None
    with Progress("scheduling", len(people), enabled=len(chunks) > 1) as bar:
        for number, chunk in enumerate(chunks):
            key = args.idempotency_key and (args.idempotency_key if len(chunks) == 1
                                            else f"{args.idempotency_key}:{number}")
            result = zs.schedule(chunk, args.title, args.message, type=args.type, priority=args.priority,
                                 data=data, idempotency_key=key, **when)
            ids += result.notification_ids
            bar.update(len(chunk))
    assert result is not None
    total = ScheduleResult(notification_ids=ids, count=len(ids), scheduled_at=result.scheduled_at,
                           replayed=result.replayed)
    if args.json:
        _show(total, True)
    else:
        shown = ", ".join(map(str, ids[:20])) + (f", ... ({len(ids) - 20} more)" if len(ids) > 20 else "")
        print(f"scheduled {total.count} notification(s) for {total.scheduled_at.isoformat()}: {shown}")


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
        if args.command == "dead":
            return cli_dead.run(args, settings)
        if args.command == "serve":
            return _serve(settings, args.host, args.port, run_worker=not args.no_worker)
        if args.command == "worker":
            asyncio.run(_work(settings, announce=True))
            return 0
        if args.command == "token":
            return _token(settings, args)
        with settings.scheduler() as zs:
            if args.command == "schedule":
                _schedule(zs, args)
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
