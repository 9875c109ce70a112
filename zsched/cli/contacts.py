"""``zsched contact show|set|erase``: a recipient's contact data (email, phone, locale) and preferences (zone,
quiet hours, opt-outs), and its erasure."""

from __future__ import annotations

import argparse

import msgspec

from ..engine.contacts import CONTACT_FIELDS
from ..settings import Settings
from .output import show

TEXT_FIELDS = tuple(name for name in CONTACT_FIELDS if name != "opt_outs")
"""The fields ``contact set`` takes as text ('' removes one)."""


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
        epilog="example: zsched contact set alice --email alice@example.com --phone +14155550123 --locale en-GB "
        "--opt-out sms:marketing",
    )
    cmd.add_argument("recipient", help="the recipient id")
    cmd.add_argument("--email", help="an address like name@example.com ('' removes it)")
    cmd.add_argument("--phone", help="E.164, e.g. +14155550123 ('' removes it)")
    cmd.add_argument("--locale", help="a BCP 47 tag, e.g. en or pt-BR ('' removes it)")
    cmd.add_argument("--zone", help="an IANA time zone, e.g. Europe/Lisbon ('' removes it)")
    cmd.add_argument("--quiet-hours", help="HH:MM-HH:MM in that zone, e.g. 22:00-07:00 ('' removes it)")
    cmd.add_argument(
        "--opt-out",
        action="append",
        default=[],
        metavar="CHANNEL:TYPE",
        help="do not send notifications of TYPE through CHANNEL, e.g. sms:marketing ('*' as TYPE: every type, as "
        "CHANNEL: every channel); repeatable",
    )
    cmd.add_argument(
        "--opt-in", action="append", default=[], metavar="CHANNEL:TYPE", help="remove such an opt-out; repeatable"
    )
    cmd.add_argument("--no-opt-outs", action="store_true", help="remove every opt-out (before --opt-out adds any)")
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
            given: dict[str, object] = {
                name: getattr(args, name) or None for name in TEXT_FIELDS if getattr(args, name) is not None
            }
            if args.no_opt_outs:
                given["opt_outs"] = None
            for name in ("opt_out", "opt_in"):
                if getattr(args, name):
                    given[name] = getattr(args, name)
            if not given:
                options = [f"--{f.replace('_', '-')}" for f in (*TEXT_FIELDS, "opt_out", "opt_in", "no_opt_outs")]
                raise ValueError(f"contact set needs at least one of {', '.join(options)}")
            contact = zs.run(zs.core.change_contact(args.recipient, given))
        else:
            contact = zs.contact(args.recipient)
        if args.json:
            show(contact, True)
            return 0
        for name, value in msgspec.structs.asdict(contact).items():
            if name == "opt_outs":
                value = "; ".join(f"{channel}: {', '.join(types)}" for channel, types in sorted(value.items())) or None
            print(f"{name:>11}: {'-' if value is None else value}")
        return 0
