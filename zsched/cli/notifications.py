"""``zsched schedule``, ``status``, ``cancel``, ``edit``, ``list`` and ``stats``: one notification, or many, from
a shell."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, datetime
from typing import Any

import msgspec

from ..client import Scheduler
from ..engine.validation import MAX_RECIPIENTS
from ..models import ON_LATE, STATUSES, ScheduleResult
from ..settings import Settings, parse_duration_ms
from .output import show
from .progress import Progress


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    """Register ``schedule``, ``status``, ``cancel``, ``edit``, ``list`` and ``stats``."""
    cmd = sub.add_parser(
        "schedule",
        parents=[common],
        help="schedule a notification for one or more recipients",
        description="Schedule one notification per recipient, due --at a time or --in a delay.",
    )
    cmd.add_argument("--to", action="append", default=[], metavar="RECIPIENT", help="recipient id; repeat for several")
    cmd.add_argument(
        "--to-file",
        metavar="FILE",
        help="recipient ids, one per line ('-' reads stdin); any number, sent in calls of 10,000 "
        "with a progress bar. With --idempotency-key a failed run can simply be run again",
    )
    cmd.add_argument("--title", required=True)
    cmd.add_argument("--message", required=True)
    when = cmd.add_mutually_exclusive_group(required=True)
    when.add_argument("--at", help="ISO 8601 time with offset, e.g. 2025-12-28T10:00:00Z")
    when.add_argument("--in", dest="delay", help="delay from now, e.g. 2s, 5m, 1h30m")
    when.add_argument(
        "--at-local", metavar="HH:MM", help="this time of day in each recipient's own zone, on --local-date"
    )
    cmd.add_argument("--local-date", metavar="YYYY-MM-DD", help="the date --at-local is on")
    cmd.add_argument("--type", default="system", help="notification type (default system)")
    cmd.add_argument("--priority", default="normal", choices=["low", "normal", "high", "urgent"])
    cmd.add_argument("--data", help="a JSON object carried with the notification")
    cmd.add_argument("--idempotency-key", help="a retried call with the same key creates nothing new")
    cmd.add_argument(
        "--expires-at", help="ISO 8601 time with offset: claimed at or after it, it ends expired and is not sent"
    )
    cmd.add_argument(
        "--on-late",
        choices=ON_LATE,
        default="send",
        help="skip: not sent when claimed more than --late-after past its due time (it ends expired)",
    )
    cmd.add_argument("--late-after", metavar="DURATION", help="with --on-late skip: how late is too late (default 1m)")
    cmd.add_argument(
        "--collapse-key", help="each recipient's pending notification scheduled earlier with this key ends collapsed"
    )
    cmd.add_argument("--spread", help="spread the recipients' due times evenly over this long, e.g. 10m")
    cmd.add_argument(
        "--digest-key",
        help="each recipient's notifications with this key due within the window go out as one: a count plus the items",
    )
    cmd.add_argument(
        "--digest-window", metavar="DURATION", help="with --digest-key: how long a digest stays open, e.g. 10m"
    )
    cmd.add_argument("--digest-max", type=int, help="with --digest-key: most notifications in one digest")
    cmd.add_argument("--json", action="store_true", help="print the result as JSON")

    for name, text in (("status", "show one notification"), ("cancel", "cancel a pending notification")):
        cmd = sub.add_parser(name, parents=[common], help=text)
        cmd.add_argument("id", type=int, help="notification id")
        cmd.add_argument("--json", action="store_true", help="print JSON")

    cmd = sub.add_parser("edit", parents=[common], help="new title, message or data for a pending notification")
    cmd.add_argument("id", type=int, help="notification id")
    add_content_arguments(cmd)
    cmd.add_argument("--json", action="store_true", help="print JSON")

    cmd = sub.add_parser("list", parents=[common], help="a recipient's notifications, newest first")
    cmd.add_argument("recipient")
    cmd.add_argument("--status", choices=STATUSES)
    cmd.add_argument("--limit", type=int, default=20)
    cmd.add_argument("--json", action="store_true", help="print JSON")

    cmd = sub.add_parser("stats", parents=[common], help="counts per status, totals, next due, overdue lag")
    cmd.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run one of this group's commands."""
    with settings.scheduler() as zs:
        if args.command == "schedule":
            _schedule(zs, args)
        elif args.command == "status":
            show(zs.status(args.id), args.json)
        elif args.command == "cancel":
            show(zs.cancel(args.id), args.json)
        elif args.command == "edit":
            show(zs.edit(args.id, **content(args)), args.json)
        elif args.command == "list":
            page = zs.list_for(args.recipient, status=args.status, limit=args.limit)
            if args.json:
                show(page, True)
            for n in [] if args.json else page.items:
                print(f"{n.id:>8}  {n.scheduled_status:<10} {n.scheduled_at.isoformat()}  {n.title}")
        elif args.command == "stats":
            show(zs.stats(), args.json)
    return 0


def _recipients(args: argparse.Namespace) -> list[str]:
    people = list(args.to)
    if args.to_file:
        with sys.stdin if args.to_file == "-" else open(args.to_file, encoding="utf-8") as lines:
            people += [line.strip() for line in lines if line.strip()]
    if not people:
        raise ValueError("give recipients with --to ID (repeatable) or --to-file FILE")
    return list(dict.fromkeys(people))


def add_content_arguments(cmd: argparse.ArgumentParser) -> None:
    """``--title``, ``--message`` and ``--data``, for the commands that edit content (any of them; at least one)."""
    cmd.add_argument("--title", help="the new title")
    cmd.add_argument("--message", help="the new message")
    cmd.add_argument("--data", help="the new data: a JSON object")


def content(args: argparse.Namespace) -> dict[str, Any]:
    """The content arguments given, as ``edit`` takes them."""
    return {"title": args.title, "message": args.message, "data": None if args.data is None else json.loads(args.data)}


def parse_time(text: str | None) -> datetime | None:
    """An ISO 8601 time from the command line (``Z`` for UTC is accepted on every Python)."""
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def _schedule(zs: Scheduler, args: argparse.Namespace) -> None:
    """One call per 10,000 recipients (the per-call limit); with --in, each call's delay runs from its own start."""
    people = _recipients(args)
    data = json.loads(args.data) if args.data else None
    when: dict[str, Any]
    if args.at_local:
        local_date = date.fromisoformat(args.local_date) if args.local_date else None
        when = {"deliver_at_local": args.at_local, "local_date": local_date}
    elif args.local_date:
        raise ValueError("--local-date goes with --at-local")
    else:
        when = {"at": parse_time(args.at)} if args.at else {"delay": parse_duration_ms(args.delay) / 1000}
    chunks = [people[i : i + MAX_RECIPIENTS] for i in range(0, len(people), MAX_RECIPIENTS)]
    ids: list[int] = []
    batches: list[str] = []  # one per call: a batch is one schedule call
    result: ScheduleResult | None = None
    with Progress("scheduling", len(people), enabled=len(chunks) > 1) as bar:
        for number, chunk in enumerate(chunks):
            key = args.idempotency_key and (
                args.idempotency_key if len(chunks) == 1 else f"{args.idempotency_key}:{number}"
            )
            result = zs.schedule(
                chunk,
                args.title,
                args.message,
                type=args.type,
                priority=args.priority,
                data=data,
                idempotency_key=key,
                expires_at=parse_time(args.expires_at),
                on_late=args.on_late,
                late_after=None if args.late_after is None else parse_duration_ms(args.late_after) / 1000,
                collapse_key=args.collapse_key,
                spread=None if args.spread is None else parse_duration_ms(args.spread) / 1000,
                digest_key=args.digest_key,
                digest_window=None if args.digest_window is None else parse_duration_ms(args.digest_window) / 1000,
                digest_max=args.digest_max,
                **when,
            )
            ids += result.notification_ids
            batches.append(result.batch_id)
            bar.update(len(chunk))
    assert result is not None
    total = ScheduleResult(
        notification_ids=ids,
        count=len(ids),
        scheduled_at=result.scheduled_at,
        replayed=result.replayed,
        batch_id=batches[0] if len(batches) == 1 else "",
    )
    if args.json:
        show({**msgspec.to_builtins(total), "batch_ids": batches}, True)
    else:
        shown = ", ".join(map(str, ids[:20])) + (f", ... ({len(ids) - 20} more)" if len(ids) > 20 else "")
        print(f"scheduled {total.count} notification(s) for {total.scheduled_at.isoformat()}: {shown}")
        print(f"batch id{'s' if len(batches) > 1 else ''}: {' '.join(batches)} (zsched batch status|cancel|reschedule)")
