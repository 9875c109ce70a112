"""``zsched inbox show|read|read-all``: a recipient's delivered notifications, and marking them read."""

from __future__ import annotations

import argparse

from ..settings import Settings
from .output import show


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Register ``inbox show``, ``inbox read`` and ``inbox read-all`` under the ``zsched`` command."""
    inbox = subparsers.add_parser("inbox", help="a recipient's delivered notifications, the unread count, marking read")
    verbs = inbox.add_subparsers(dest="inbox_command", required=True, metavar="ACTION")
    cmd = verbs.add_parser("show", parents=[common], help="the inbox, newest first, and how many are unread")
    cmd.add_argument("recipient")
    cmd.add_argument("--limit", type=int, default=20)
    cmd.add_argument("--before", help="next_before of the previous page")
    cmd.add_argument("--json", action="store_true", help="print JSON")
    cmd = verbs.add_parser("read", parents=[common], help="mark notifications read (the first mark's time is kept)")
    cmd.add_argument("recipient")
    cmd.add_argument("ids", type=int, nargs="+", metavar="ID")
    cmd.add_argument("--json", action="store_true", help="print JSON")
    cmd = verbs.add_parser("read-all", parents=[common], help="mark everything in the inbox read")
    cmd.add_argument("recipient")
    cmd.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run one ``inbox`` action; returns the exit status."""
    with settings.scheduler() as zs:
        if args.inbox_command == "show":
            page = zs.inbox(args.recipient, limit=args.limit, before=args.before)
            if args.json:
                show(page, True)
                return 0
            print(f"{page.recipient}: {page.unread} unread")
            for item in page.items:
                n = item.notification
                print(f"{item.stream_id:>20}  {' ' if item.read else '*'} {n.get('id', ''):>8}  {n.get('title', '')}")
            if page.next_before:
                print(f"more: --before {page.next_before}")
            return 0
        if args.inbox_command == "read":
            marks = zs.mark_read(args.recipient, args.ids)
            text = f"{len(marks.read_at)} of {len(set(args.ids))} read (unknown, not theirs or not sent: left alone)"
        else:
            marks = zs.mark_all_read(args.recipient)
            text = "everything read"
        if args.json:
            show(marks, True)
        else:
            print(f"{args.recipient}: {text}; {marks.unread} unread")
    return 0
