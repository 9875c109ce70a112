"""``zsched recurring ...``: create, list, show, preview, pause, resume and delete recurring schedules."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import Any

from ..models import RecurringSchedule
from ..settings import Settings, parse_duration_ms
from .output import show

EPILOG = """\
examples:
  zsched recurring create --to alice --title Stand-up --message "in 5 minutes" \\
      --cron "55 8 * * MON-FRI" --timezone Europe/Berlin
  zsched recurring create --to ops --title Heartbeat --message ok --every 15m --max-count 96
  zsched recurring list                      every schedule, by id
  zsched recurring preview 1 --count 5       the next five times schedule 1 fires
  zsched recurring pause 1                   no more occurrences; the pending one is cancelled
  zsched recurring resume 1                  from its next time after now
  zsched recurring delete 1

Each occurrence is an ordinary notification (zsched status ID, zsched cancel ID); only the next one is
stored. A cron rule reads the zone's wall clock: a time skipped by a spring-forward change fires once, at
the change; a time repeated by a fall-back change fires once, the first time. Times missed while no
worker ran are skipped (--catch-up skip, the default) or the last one fires once (--catch-up last).
"""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    """Register ``recurring`` and its subcommands."""
    top = sub.add_parser(
        "recurring",
        parents=[common],
        help="recurring schedules: a cron rule or an interval, each occurrence a notification",
        description="Recurring schedules: a notification repeated on a cron rule (in a time zone) or an interval.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = top.add_subparsers(dest="verb", required=True, metavar="ACTION")
    cmd = verbs.add_parser(
        "create",
        parents=[common],
        help="create a schedule and its first occurrence",
        description="Create a recurring schedule; its first occurrence is scheduled at once.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmd.add_argument("--to", action="append", required=True, metavar="RECIPIENT", help="recipient id; repeat")
    cmd.add_argument("--title", required=True)
    cmd.add_argument("--message", required=True)
    rule = cmd.add_mutually_exclusive_group(required=True)
    rule.add_argument("--cron", help="5 fields: minute hour day-of-month month day-of-week, e.g. '0 9 * * MON-FRI'")
    rule.add_argument("--every", help="an interval, e.g. 30s, 15m, 1h30m (elapsed time: DST does not move it)")
    cmd.add_argument("--timezone", default="UTC", help="IANA zone the cron rule reads, e.g. America/New_York")
    cmd.add_argument("--start", help="no occurrence before this ISO 8601 time with offset (default: now)")
    cmd.add_argument("--end", help="no occurrence after this ISO 8601 time with offset (default: none)")
    cmd.add_argument("--max-count", type=int, help="at most this many occurrences")
    cmd.add_argument(
        "--catch-up", default="skip", choices=["skip", "last"], help="times missed in an outage (default skip)"
    )
    cmd.add_argument("--type", default="system", help="notification type (default system)")
    cmd.add_argument("--priority", default="normal", choices=["low", "normal", "high", "urgent"])
    cmd.add_argument("--data", help="a JSON object carried with each occurrence")
    cmd.add_argument("--idempotency-key", help="a rerun with the same key returns the first schedule, creating none")
    cmd.add_argument("--json", action="store_true", help="print the schedule as JSON")

    cmd = verbs.add_parser("list", parents=[common], help="schedules by id")
    cmd.add_argument("--created-by", help="only this creator's")
    cmd.add_argument("--limit", type=int, default=50)
    cmd.add_argument("--json", action="store_true", help="print JSON")

    for verb, text in (
        ("show", "one schedule"),
        ("pause", "stop creating occurrences and cancel the pending one"),
        ("resume", "start a paused schedule again from its next time after now"),
        ("delete", "remove a schedule and cancel its pending occurrence"),
    ):
        cmd = verbs.add_parser(verb, parents=[common], help=text, description=text[0].upper() + text[1:] + ".")
        cmd.add_argument("id", type=int, help="recurring schedule id")
        cmd.add_argument("--json", action="store_true", help="print JSON")

    cmd = verbs.add_parser("preview", parents=[common], help="the next times a schedule fires")
    cmd.add_argument("id", type=int, help="recurring schedule id")
    cmd.add_argument("--count", type=int, default=10, help="how many (default 10)")
    cmd.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run one ``recurring`` subcommand."""
    with settings.scheduler() as zs:
        if args.verb == "create":
            s = zs.create_recurring(
                args.to,
                args.title,
                args.message,
                cron=args.cron,
                every=None if args.every is None else parse_duration_ms(args.every) / 1000,
                timezone=args.timezone,
                start=_time(args.start),
                end=_time(args.end),
                max_count=args.max_count,
                catch_up=args.catch_up,
                type=args.type,
                priority=args.priority,
                data=json.loads(args.data) if args.data else None,
                idempotency_key=args.idempotency_key,
            )
            _show(s, args.json)
        elif args.verb == "list":
            page = zs.list_recurring(created_by=args.created_by, limit=args.limit)
            if args.json:
                show(page, True)
            for s in [] if args.json else page.items:
                rule = s.cron or f"every {s.every_s:g}s"
                nxt = s.next_at.isoformat() if s.next_at else "-"
                print(f"{s.id:>8}  {s.status:<9} {rule:<20} {s.timezone:<20} next {nxt}  {s.title}")
        elif args.verb == "preview":
            times = zs.preview_recurring(args.id, args.count)
            if args.json:
                show({"times": times}, True)
            for t in [] if args.json else times:
                print(t.isoformat())
        else:
            action: dict[str, Any] = {
                "show": zs.recurring,
                "pause": zs.pause_recurring,
                "resume": zs.resume_recurring,
                "delete": zs.delete_recurring,
            }
            _show(action[args.verb](args.id), args.json)
    return 0


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def _show(s: RecurringSchedule, as_json: bool) -> None:
    if as_json:
        show(s, True)
        return
    rule = f"cron {s.cron!r} in {s.timezone}" if s.cron else f"every {s.every_s:g} s"
    print(f"recurring schedule {s.id}: {s.status}, {rule}, {s.count} occurrence(s) so far")
    if s.next_at is not None:
        print(
            f"  latest occurrence: {s.next_at.isoformat()} (notification ids {', '.join(map(str, s.occurrence_ids))})"
        )
    print(f"  to {', '.join(s.recipients)}: {s.title}")
