"""``zsched batch status|cancel|reschedule|edit BATCH_ID``: a whole schedule call at once, by the batch id it
returned."""

from __future__ import annotations

import argparse

from ..settings import Settings, parse_duration_ms
from .notifications import add_content_arguments, content, parse_time
from .output import show


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Register ``batch status``, ``batch cancel`` and ``batch reschedule`` under the ``zsched`` command."""
    batch = subparsers.add_parser("batch", help="a whole schedule call at once, by the batch id schedule printed")
    verbs = batch.add_subparsers(dest="batch_command", required=True, metavar="ACTION")
    for name, text in (
        ("status", "how many of the call's notifications are in each status"),
        ("cancel", "cancel every notification of the call still pending"),
        ("reschedule", "move every notification of the call still pending to a new time"),
        ("edit", "new title, message or data for every notification of the call still pending"),
    ):
        cmd = verbs.add_parser(name, parents=[common], help=text)
        cmd.add_argument("batch_id", metavar="BATCH_ID", help="as schedule printed it, e.g. 12x3")
        cmd.add_argument("--json", action="store_true", help="print JSON")
        if name == "reschedule":
            when = cmd.add_mutually_exclusive_group(required=True)
            when.add_argument("--at", help="ISO 8601 time with offset, e.g. 2030-12-28T10:00:00Z")
            when.add_argument("--in", dest="delay", help="delay from now, e.g. 2s, 5m, 1h30m")
        if name == "edit":
            add_content_arguments(cmd)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run one ``batch`` action; prints what it did."""
    with settings.scheduler() as zs:
        if args.batch_command == "status":
            summary = zs.batch_status(args.batch_id)
            if args.json:
                show(summary, True)
            else:
                counts = ", ".join(f"{status} {n}" for status, n in summary.counts.items() if n)
                print(f"batch {summary.batch_id}: {summary.count} notification(s): {counts or 'none left'}")
            return 0
        if args.batch_command == "cancel":
            change = zs.cancel_batch(args.batch_id)
        elif args.batch_command == "edit":
            change = zs.edit_batch(args.batch_id, **content(args))
        else:
            when = {"at": parse_time(args.at)} if args.at else {"delay": parse_duration_ms(args.delay) / 1000}
            change = zs.reschedule_batch(args.batch_id, **when)
        if args.json:
            show(change, True)
        else:
            done = {"cancel": "cancelled", "edit": "edited"}.get(args.batch_command, "rescheduled")
            print(
                f"batch {change.batch_id}: {change.changed} {done}, {change.not_pending} no longer pending, "
                f"{change.missing} gone"
            )
        return 0
