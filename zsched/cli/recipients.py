"""``zsched recipient ID``: what one recipient was sent, received and read, newest first, and their open WebSockets."""

from __future__ import annotations

import argparse

import msgspec

from ..engine import validation
from ..settings import Settings
from ..web.dashboard.shapes import recipient_view
from ..web.views import full_view


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Register ``recipient`` under the ``zsched`` command."""
    cmd = subparsers.add_parser(
        "recipient",
        parents=[common],
        help="what one recipient was sent, received and read, and their open sockets",
        description="The recipient's latest notifications (received: a client of theirs acknowledged it; read: they "
        "marked it read), and how "
        "many WebSockets they have open on each gateway, as of its last heartbeat (every 5 s).",
    )
    cmd.add_argument("recipient", help="the recipient's id")
    cmd.add_argument("--limit", type=int, default=20, help="how many of their latest notifications (default 20)")
    cmd.add_argument("--json", action="store_true", help="print JSON, as GET /api/recipient answers")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Print the recipient's view."""
    who = validation.recipient(args.recipient)
    with settings.scheduler() as zs:
        page = zs.list_for(who, limit=args.limit)
        presence = zs.sockets(who)
    view = recipient_view(page, presence, lambda n: full_view(n, "admin"))
    if args.json:
        print(msgspec.json.encode(view).decode())
        return 0
    print(f"{view.recipient}: {view.sockets} open socket(s)")
    for g in view.gateways:
        print(f"  {g.sockets} on {g.host} (pid {g.pid}){'  LATE, not counted' if g.late else ''}")
    print(
        f"latest {view.listed}: {view.sent} sent, {view.received} received (acknowledged by their client), "
        f"{view.read} read"
    )
    for n in view.items:
        sent = n.sent_at.isoformat() if n.sent_at else "-"
        received = n.delivered_at.isoformat() if n.delivered_at else "-"
        read = n.read_at.isoformat() if n.read_at else "-"
        print(f"{n.id:>8}  {n.scheduled_status:<10} sent {sent:<32} received {received:<32} read {read:<32} {n.title}")
    return 0


__all__ = ["add_parser", "run"]
