"""The ``zsched`` command. Run ``zsched --help``, or ``zsched COMMAND --help`` for one command."""

from __future__ import annotations

import argparse
import sys

import redis

from .. import __version__
from ..connection import CLUSTER_ERRORS
from ..errors import ValidationError, ZschedError
from ..settings import Settings
from . import (
    batches,
    config,
    contacts,
    dead,
    inbox,
    logs,
    notifications,
    pauses,
    recipients,
    recurring,
    rediscli,
    reshard,
    run,
    templates,
    tokens,
    workers,
)

EPILOG = """\
examples:
  zsched serve                                   HTTP API + worker on 127.0.0.1:8000, embedded server (./.zsched)
  zsched token create --user alice               make an API token (printed once, on the last line)
  zsched schedule --to alice --title Hi --message "Stand-up in 5" --in 2s
  zsched status 1                                see where notification 1 is
  zsched cancel 1                                cancel it while it is pending
  zsched stats                                   counts per status, next due, overdue lag, pauses
  zsched pause --type promo                      stop delivering promo notifications; zsched resume lifts it
  zsched contact set alice --email a@x.example   set alice's address (the email channel sends there)
  zsched template save welcome welcome.json      save a template's next version (zsched template --help)
  zsched workers                                 running workers and gateways; a late heartbeat is flagged
  zsched recurring create --to alice --title Hi --message Stand-up --cron "0 9 * * MON-FRI" --timezone Europe/Berlin
  zsched recipient alice                         what alice was sent and received, and her open sockets
  zsched reshard --partitions 6                  move pending notifications to 6 partitions, delivery going on
  zsched redis-cli ZRANGE 'zsched:{p0}:due' 0 9 WITHSCORES

With no --redis-url (or ZSCHED_REDIS_URL), every command uses the embedded valkey-server whose data
lives in --data-dir: a running one is reused, otherwise one is started for the command
(pip install 'zsched[embedded]').

Exit status: 0 done, 1 it could not be done (Redis down, no such notification, ...), 2 a usage error.
Commands that print data take --json. ZSCHED_LOG_FORMAT=json makes serve and worker log JSON lines.
"""


def _parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="zsched",
        description="Schedule notifications for a future time and deliver them when due.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument("--version", action="version", version=f"zsched {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--redis-url", help="Redis to use (env ZSCHED_REDIS_URL); default: the embedded server")
    common.add_argument(
        "--redis-cluster",
        choices=("auto", "yes", "no"),
        help="is the Redis a cluster (env ZSCHED_REDIS_CLUSTER; default auto: ask it with INFO cluster)",
    )
    common.add_argument(
        "--redis-nodes", help="a Redis Cluster's seed nodes, host:port,host:port (env ZSCHED_REDIS_NODES)"
    )
    common.add_argument("--data-dir", help="embedded server's data folder (env ZSCHED_DATA_DIR; default .zsched)")
    common.add_argument("--prefix", help="key prefix (env ZSCHED_PREFIX; default zsched)")
    common.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    connection = common  # what reshard takes: its --partitions is the count to move to
    common = argparse.ArgumentParser(add_help=False, parents=[connection])
    common.add_argument("--partitions", type=int, help="hash-tagged partitions (env ZSCHED_PARTITIONS; default 1)")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run.add_parsers(sub, common)
    tokens.add_parsers(sub, common)
    notifications.add_parsers(sub, common)
    dead.add_parser(sub, common)
    contacts.add_parser(sub, common)
    batches.add_parser(sub, common)
    recurring.add_parser(sub, common)
    templates.add_parser(sub, common)
    inbox.add_parser(sub, common)
    rediscli.add_parser(sub, common)
    config.add_parser(sub, common)
    workers.add_parser(sub, common)
    recipients.add_parser(sub, common)
    pauses.add_parsers(sub, common)
    reshard.add_parser(sub, connection)
    sub.add_parser(
        "bench", help="measure throughput, lateness and memory against a raw-Redis baseline", add_help=False
    )  # its own flags: zsched bench --help
    return top


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        redis_url=args.redis_url,
        redis_cluster=args.redis_cluster,
        redis_nodes=args.redis_nodes,
        data_dir=args.data_dir,
        prefix=args.prefix,
        partitions=args.partitions,
        batch=getattr(args, "batch", None),
        lease_ms=getattr(args, "lease_ms", None),
        rate_per_s=getattr(args, "rate_per_s", None),
        rate_burst=getattr(args, "rate_burst", None),
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``zsched`` console script; returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:
        return _bench(argv[1:])
    args = _parser().parse_args(argv)  # a usage error exits 2 here
    try:
        level = getattr(args, "log_level", None) or ("debug" if args.verbose else "info")
        logs.configure(level, logs.log_format())
        settings = _settings(args)
        runner = {
            "batch": batches.run,
            "config": config.run,
            "contact": contacts.run,
            "dead": dead.run,
            "recurring": recurring.run,
            "inbox": inbox.run,
            "pause": pauses.run,
            "resume": pauses.run,
            "redis-cli": rediscli.run,
            "reshard": reshard.run,
            "serve": run.run,
            "template": templates.run,
            "worker": run.run,
            "token": tokens.run,
            "workers": workers.run,
            "recipient": recipients.run,
        }.get(args.command, notifications.run)
        return runner(args, settings)
    except (ValidationError, ValueError) as exc:  # the command or its configuration is wrong: fix and rerun
        return _error(exc, 2)
    except (
        ZschedError,
        redis.RedisError,
        *CLUSTER_ERRORS,
        OSError,
        RuntimeError,
    ) as exc:  # it could not be done, this time
        return _error(exc, 1)
    except KeyboardInterrupt:
        return 130


def _error(exc: BaseException, status: int) -> int:
    """One line on stderr, never a traceback: what went wrong, and the exit status that says which kind."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, redis.exceptions.AskError):  # MOVED too: a cluster node reached as a single server
        text = f"Redis answered {text!r}: it is a Redis Cluster node; use --redis-cluster yes (ZSCHED_REDIS_CLUSTER)"
    elif isinstance(exc, (redis.RedisError, *CLUSTER_ERRORS)):
        text = f"Redis: {text}"
    print(f"zsched: error: {text}", file=sys.stderr)
    return status


def _bench(argv: list[str]) -> int:
    try:
        from bench.runner import main as bench_main  # the benchmarks live beside the package, in a checkout
    except ImportError:
        print(
            "zsched: error: zsched bench needs the source checkout (the bench/ folder); run it from there, "
            "e.g. git clone ... && make bench",
            file=sys.stderr,
        )
        return 1
    return bench_main(argv)


if __name__ == "__main__":
    sys.exit(main())
