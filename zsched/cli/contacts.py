"""``zsched contact show|set|erase``: a recipient's contact data (email, phone, locale) and preferences (zone,
quiet hours), and its erasure."""

from __future__ import annotations

import argparse

import msgspec

from ..engine.contacts import CONTACT_FIELDS
from ..settings import Settings
from .output import show


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Register ``contact show``, ``contact set`` and ``contact erase`` under the ``zsched`` command."""
    contact = subparsers.add_parser("contact", help="a recipient's contact data: email, phone, locale; erasure")
    verbs = contact.add_subparsers(dest="contact_command", required=True, metavar="ACTION")
    cmd = verbs.add_parser("show", parents=[common], help="print a recipient's contact data")
    cmd.add_argument("recipient", help="the recipient id")
    cmd.add_argument("--json", action="store_true", help="print JSON")
    cmd = verbs.add_parser(
        "set",
        parents=[common],
        help="set contact fields; the others are kept",
        description="Set the fields given; an empty value ('') removes that field. Fields not given are kept.",
        epilog="example: zsched contact set alice --email alice@example.com --phone +14155550123 --locale en-GB",
    )
    cmd.add_argument("recipient", help="the recipient id")
    cmd.add_argument("--email", help="an address like name@example.com ('' removes it)")
    cmd.add_argument("--phone", help="E.164, e.g. +14155550123 ('' removes it)")
    cmd.add_argument("--locale", help="a BCP 47 tag, e.g. en or pt-BR ('' removes it)")
    cmd.add_argument("--zone", help="an IANA time zone, e.g. Europe/Lisbon ('' removes it)")
    cmd.add_argument("--quiet-hours", help="HH:MM-HH:MM in that zone, e.g. 22:00-07:00 ('' removes it)")
    cmd.add_argument("--json", action="store_true", help="print JSON")
    cmd = verbs.add_parser(
        "erase",
        parents=[common],
        help="erase a recipient's contact data and inbox (a data-protection request)",
        description="Remove the recipient's contact data and every entry of their inbox. Their notification "
        "records stay until retention purges them.",
    )
    cmd.add_argument("recipient", help="the recipient id")
    cmd.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``contact show``, ``contact set`` or ``contact erase``; returns the exit status."""
    with settings.scheduler() as zs:
        if args.contact_command == "erase":
            erased = zs.erase_recipient(args.recipient)
            if args.json:
                show(erased, True)
            else:
                print(
                    f"erased {erased.recipient}: contact data {'removed' if erased.contact_removed else 'none'}, "
                    f"{erased.inbox_entries_removed} inbox entr{'y' if erased.inbox_entries_removed == 1 else 'ies'}"
                )
            return 0
        if args.contact_command == "set":
            given = {name: getattr(args, name) for name in CONTACT_FIELDS if getattr(args, name) is not None}
            if not given:
                raise ValueError(
                    f"contact set needs at least one of --{', --'.join(f.replace('_', '-') for f in CONTACT_FIELDS)}"
                )
            contact = zs.run(zs.core.change_contact(args.recipient, {k: v or None for k, v in given.items()}))
        else:
            contact = zs.contact(args.recipient)
        if args.json:
            show(contact, True)
            return 0
        for name, value in msgspec.structs.asdict(contact).items():
            print(f"{name:>11}: {'-' if value is None else value}")
        return 0
