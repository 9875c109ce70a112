"""``zsched dead list`` and ``zsched dead retry ID|--all``: inspect and requeue the dead letters."""

from __future__ import annotations

import argparse
import sys

import msgspec

from ..engine import list_dead, requeue_dead
from ..settings import Settings


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Register ``dead list`` and ``dead retry`` under the ``zsched`` command."""
    dead = subparsers.add_parser("dead", help="the dead letters: notifications that failed every attempt")
    verbs = dead.add_subparsers(dest="dead_command", required=True, metavar="ACTION")
    cmd = verbs.add_parser("list", parents=[common], help="show failed notifications, oldest failure first")
    cmd.add_argument("--limit", type=int, default=100, help="most per partition (default 100)")
    cmd.add_argument("--json", action="store_true", help="print JSON")
    cmd = verbs.add_parser(
        "retry",
        parents=[common],
        help="requeue failed notifications for delivery now",
        description="Make dead letters due now, with a fresh set of attempts.",
    )
    cmd.add_argument("ids", nargs="*", type=int, default=[], metavar="ID", help="notification id(s)")
    cmd.add_argument("--all", action="store_true", help="every dead letter")
    cmd.add_argument("--json", action="store_true", help="print JSON: requeued and missing ids")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``dead list`` or ``dead retry``; returns the exit status (1 when a given id was not dead)."""
    with settings.scheduler() as zs:
        if args.dead_command == "list":
            items = zs.run(list_dead(zs.core, args.limit))
            if args.json:
                print(msgspec.json.encode(items).decode())
                return 0
            for n in items:
                when = n.failed_at.isoformat() if n.failed_at else "-"
                print(f"{n.id:>8}  {n.recipient:<16} attempts={n.attempts}  failed_at={when}  {n.title}")
                print(f"{'':>10}last_error: {n.last_error}")
            print(f"{len(items)} dead letter(s)")
            return 0
        if bool(args.all) == bool(args.ids):
            print(
                "zsched: error: dead retry takes notification ids or --all (one of the two); "
                f"got ids={args.ids} all={args.all}",
                file=sys.stderr,
            )
            return 2
        requeued: list[int] = zs.run(requeue_dead(zs.core, args.ids, everything=args.all))
        missing = sorted(set(args.ids) - set(requeued))
        if args.json:
            print(msgspec.json.encode({"requeued": requeued, "missing": missing}).decode())
            return 1 if missing else 0
        print(f"requeued {len(requeued)} notification(s): {', '.join(map(str, requeued)) or '-'}")
        if missing:
            print(f"not dead letters (unknown, or not failed): {', '.join(map(str, missing))}")
            return 1
        return 0
