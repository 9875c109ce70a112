"""``zsched workers``: every worker and gateway, from its heartbeat, with a late one flagged."""

from __future__ import annotations

import argparse

import msgspec

from ..engine.processes import list_processes
from ..settings import Settings
from ..web.dashboard.shapes import process_view


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Register ``workers`` under the ``zsched`` command."""
    cmd = subparsers.add_parser(
        "workers",
        parents=[common],
        help="list the running workers and gateways, flagging a late heartbeat",
        description="Every zsched serve and zsched worker process beats every 5 s; one silent for three beats "
        "is flagged LATE (stopped, stalled, or cut off from Redis), and is listed for 10 minutes.",
    )
    cmd.add_argument("--json", action="store_true", help="print JSON, as GET /api/processes answers")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Print the processes; exits 0 whether or not one is late (the listing says so)."""
    with settings.scheduler() as zs:
        states = zs.run(list_processes(zs.core))
    views = [process_view(s) for s in states]
    if args.json:
        print(msgspec.json.encode(views).decode())
        return 0
    if not views:
        print("no worker or gateway has sent a heartbeat in the last 10 minutes")
        return 0
    print(
        f"{'kind':<8} {'host':<20} {'pid':>7} {'version':<8} {'started':<20} {'parts':<8} {'flight':>6} "
        f"{'socks':>5}  last beat"
    )
    for v in views:
        started = v.started_at.astimezone().strftime("%Y-%m-%d %H:%M:%S")
        parts = ",".join(map(str, v.partitions))
        socks = "-" if v.sockets is None else str(v.sockets)
        flag = "  LATE" if v.late else ""
        print(
            f"{v.kind:<8} {v.host[:20]:<20} {v.pid:>7} {v.version:<8} {started:<20} {parts[:8]:<8} "
            f"{v.in_flight:>6} {socks:>5}  {v.age_ms / 1000:.1f} s ago{flag}"
        )
    late = sum(v.late for v in views)
    print(f"{len(views)} process(es){f', {late} late' if late else ''}")
    return 0


__all__ = ["add_parser", "run"]
