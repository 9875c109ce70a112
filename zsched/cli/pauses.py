"""``zsched pause`` and ``zsched resume``: stop and restart delivery, of everything or of one type."""

from __future__ import annotations

import argparse

from ..models import Pauses
from ..settings import Settings
from .output import show


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    """Register ``pause`` and ``resume``."""
    cmd = sub.add_parser(
        "pause",
        parents=[common],
        help="stop delivering (everything, or one --type) until zsched resume",
        description="Stop delivery: no worker hands out a paused notification; schedules pile up meanwhile.",
    )
    cmd.add_argument("--type", help="pause only notifications of this type (default: everything)")
    cmd.add_argument("--json", action="store_true", help="print JSON")
    cmd = sub.add_parser(
        "resume",
        parents=[common],
        help="lift pauses (every one, or one --type); what waited drains in due order",
        description="Lift pauses; what piled up is delivered in due order, priorities first.",
    )
    cmd.add_argument("--type", help="lift only this type's pause (default: every pause)")
    cmd.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``pause`` or ``resume``, then print what is paused."""
    with settings.scheduler() as zs:
        now = zs.pause(args.type) if args.command == "pause" else zs.resume(args.type)
    if args.json:
        show(now, True)
    else:
        print(describe(now))
    return 0


def describe(p: Pauses) -> str:
    """One line saying what is paused."""
    if not p.all and not p.types:
        return "delivering: nothing is paused" + (f" ({p.parked} still waiting to go back)" if p.parked else "")
    scopes = (["everything"] if p.all else []) + [f"type {t}" for t in p.types]
    since = min(p.since.values()).isoformat()
    return f"paused: {', '.join(scopes)} (since {since}); {p.parked} notification(s) of paused types waiting aside"
