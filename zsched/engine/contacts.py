"""Contact data: how a recipient is reached outside zsched's own channels (an email address, a phone number, a
locale), their preferences (zone, quiet hours, opt-outs: see ``optouts``), and the erasure of what zsched keeps to
reach them.

A recipient's contact lives in their partition's ``contacts`` hash (field: the recipient, value: the JSON of the
fields that are set), beside their notifications and inbox, so a channel reads a batch's addresses with one
HMGET per partition and an erasure is one script call. Each operation is a generator of Redis steps (see
``steps``); nothing here does I/O of its own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import msgspec
from msgspec import UNSET, UnsetType

from ..errors import FieldError
from ..models import Contact, Erasure
from . import localtime, optouts, validation
from .base import CoreBase
from .keys import Keyspace
from .replies import EraseReply, SetContactReply
from .steps import Command, Op, Script

CONTACT_FIELDS: tuple[str, ...] = ("email", "phone", "locale", "zone", "quiet_hours", "opt_outs")
"""The contact fields a recipient may have, in the order they are shown."""
CHANGES: tuple[str, ...] = (*CONTACT_FIELDS, "opt_out", "opt_in")
"""What a change may name: a field (set or removed), or ``opt_out``/``opt_in`` (``"channel:type"`` entries
added to or taken from ``opt_outs``, leaving the others)."""
PREFERENCE_FIELDS: tuple[str, ...] = ("zone", "quiet_hours", "opt_outs", "opt_out", "opt_in")
"""The fields that say when and what to send a recipient (not how to reach them): a token with the
preferences:write scope may set them for anyone, and sees only them."""

MAX_EMAIL = 254  # RFC 5321's limit on a forward path, less its angle brackets
MAX_LOCALE = 35
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"  # RFC 5322 atom text, ASCII only
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"  # a DNS label
EMAIL_PATTERN = rf"^{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*$"
"""An email address zsched sends to: ASCII ``dot-atom@domain`` (the HTTP API's schema states the same)."""
PHONE_PATTERN = r"^\+[1-9][0-9]{1,14}$"
"""A phone number in E.164: '+', a country code that does not start with 0, at most 15 digits in all."""
LOCALE_PATTERN = r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*$"
"""A BCP 47 language tag: a language, then subtags joined by '-'."""
_EMAIL, _PHONE, _LOCALE = re.compile(EMAIL_PATTERN), re.compile(PHONE_PATTERN), re.compile(LOCALE_PATTERN)


class _Stored(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=False):
    """A contact as stored: only the fields that are set."""

    email: str | None = None
    phone: str | None = None
    locale: str | None = None
    zone: str | None = None
    quiet_hours: str | None = None
    opt_outs: dict[str, list[str]] | None = None


_decode_stored = msgspec.json.Decoder(_Stored).decode


def email(value: object) -> str:
    """An email address as zsched sends to it: ASCII ``local@domain``, at most 254 characters; FieldError
    otherwise (an internationalized domain is written in its punycode form, ``xn--...``)."""
    text = _text(value, "email", MAX_EMAIL)
    if not _EMAIL.match(text) or text.endswith("\n"):  # '$' also matches before a final newline
        raise FieldError(
            f"email must be an address like name@example.com (ASCII; an international domain in its xn-- form, "
            f"at most {MAX_EMAIL} characters); got {text[:80]!r}",
            "email",
        )
    return text


def phone(value: object) -> str:
    """A phone number in E.164 (``+14155550123``: '+', the country code, the number; at most 15 digits)."""
    text = _text(value, "phone", 64)  # longer is refused below, with what E.164 is
    if not _PHONE.match(text) or text.endswith("\n"):
        raise FieldError(
            f"phone must be in E.164 form: '+', the country code and the number, digits only, at most 15 "
            f"(e.g. +14155550123); got {text[:40]!r}",
            "phone",
        )
    return text


def locale(value: object) -> str:
    """A BCP 47 language tag (``en``, ``pt-BR``, ``zh-Hant-TW``), at most 35 characters."""
    text = _text(value, "locale", MAX_LOCALE)
    if not _LOCALE.match(text) or text.endswith("\n"):
        raise FieldError(
            f"locale must be a BCP 47 language tag such as en, en-GB or zh-Hant-TW (subtags joined by '-'); "
            f"got {text[:40]!r}",
            "locale",
        )
    return text


_CHECKS = {
    "email": email,
    "phone": phone,
    "locale": locale,
    "zone": localtime.zone,
    "quiet_hours": localtime.quiet_hours,
}


def _text(value: object, field: str, limit: int) -> str:
    if not isinstance(value, str):
        raise FieldError(f"{field} must be a string or None; got {validation.type_name(value)}", field)
    if not 1 <= len(value) <= limit:
        raise FieldError(f"{field} must be 1 to {limit} characters (None removes it); got {len(value)}", field)
    return value


def contact_of(recipient: str, raw: bytes | str | None) -> Contact:
    """The contact a stored JSON (as HGET/HMGET return it; None: nothing stored) describes."""
    if not raw:
        return Contact(recipient=recipient)
    stored = _decode_stored(raw)
    return Contact(
        recipient=recipient,
        email=stored.email,
        phone=stored.phone,
        locale=stored.locale,
        zone=stored.zone,
        quiet_hours=stored.quiet_hours,
        opt_outs=stored.opt_outs or {},
    )


def lookup(keys: Keyspace, recipients: Sequence[str]) -> Op[dict[str, Contact]]:
    """The contacts of ``recipients`` (every one answered, with None fields where nothing is set): one HMGET per
    partition they live in, all in one round trip."""
    wanted = list(dict.fromkeys(recipients))
    groups: dict[int, list[str]] = {}
    for r in wanted:
        groups.setdefault(keys.for_recipient(r).index, []).append(r)
    if not groups:
        return {}
    replies = yield [Command(("HMGET", keys.partitions[i].contacts, *people)) for i, people in groups.items()]
    found: dict[str, Contact] = {}
    for people, values in zip(groups.values(), replies, strict=True):
        for r, raw in zip(people, values, strict=True):
            found[r] = contact_of(r, raw)
    return found


class ContactOps(CoreBase):
    """Read, change and erase what zsched keeps to reach a recipient."""

    def contact(self, recipient: object) -> Op[Contact]:
        """The recipient's contact data (fields None where not set; all None for a recipient with none)."""
        who = validation.recipient(recipient)
        found = yield from lookup(self.keys, [who])
        return found[who]

    def set_contact(
        self,
        recipient: object,
        *,
        email: str | UnsetType | None = UNSET,
        phone: str | UnsetType | None = UNSET,
        locale: str | UnsetType | None = UNSET,
        zone: str | UnsetType | None = UNSET,
        quiet_hours: str | UnsetType | None = UNSET,
        opt_outs: Mapping[str, Sequence[str]] | UnsetType | None = UNSET,
        opt_out: Sequence[str] = (),
        opt_in: Sequence[str] = (),
    ) -> Op[Contact]:
        """Set the fields given (None removes one), keep the others; returns the contact as it is now (given no
        field, only reads it). ``opt_outs`` replaces the whole opt-out table; ``opt_out`` and ``opt_in`` add and
        remove ``"channel:type"`` entries (``"sms:marketing"``), keeping the rest."""
        who = validation.recipient(recipient)
        changes: dict[str, object] = {
            "email": email,
            "phone": phone,
            "locale": locale,
            "zone": zone,
            "quiet_hours": quiet_hours,
            "opt_outs": opt_outs,
            "opt_out": opt_out or UNSET,
            "opt_in": opt_in or UNSET,
        }
        return (yield from self.change_contact(who, {k: v for k, v in changes.items() if v is not UNSET}))

    def change_contact(self, recipient: object, changes: Mapping[str, object]) -> Op[Contact]:
        """``set_contact`` with the changes as a mapping (field -> value, None removes it; ``opt_out`` and
        ``opt_in``: lists of ``"channel:type"``); each field is checked, so nothing is written when any is wrong."""
        who = validation.recipient(recipient)
        unknown = [name for name in changes if name not in CHANGES]
        if unknown:
            raise FieldError(
                f"contact fields are {', '.join(CONTACT_FIELDS)} (and opt_out, opt_in); got {unknown[0][:40]!r}",
                unknown[0],
            )
        if not changes:  # nothing to change: the contact as it is
            return (yield from self.contact(who))
        args: list[str | int] = [who, optouts.MAX_OPT_OUTS]
        for name in CHANGES:  # a whole table first, then the entries added and removed, in that order
            if name not in changes:
                continue
            value = changes[name]
            if name in ("opt_out", "opt_in"):
                for channel, typ in optouts.entries(value, name):
                    args += [name, f"{channel}:{typ}"]
            elif name == "opt_outs":
                table = {} if value is None else optouts.table(value)
                args += [name, msgspec.json.encode(table).decode() if table else ""]
            else:
                args += [name, "" if value is None else _CHECKS[name](value)]
        p = self.keys.for_recipient(who)
        keys = [p.contacts, p.with_preferences, p.websocket_opt_outs]
        (reply,) = yield [Script("set_contact", keys, args)]
        got = SetContactReply.read(reply)
        if got.opt_outs_over:
            raise FieldError(
                f"opt-outs hold at most {optouts.MAX_OPT_OUTS} channel and type entries; this change would make "
                f"{got.opt_outs_over} (nothing was changed). Use '*' for every type of a channel, or opt_in some first",
                "opt_out",
            )
        self.preferences_seen.pop(p.index, None)  # this process's next schedule call looks again
        return contact_of(who, got.contact)

    def erase_recipient(self, recipient: object) -> Op[Erasure]:
        """Remove the recipient's contact data and inbox, and what they marked read in it (a data-protection
        erasure); says what was removed. Their notification records stay until retention purges them."""
        who = validation.recipient(recipient)
        p = self.keys.for_recipient(who)
        keys = [p.contacts, p.inbox(who), p.with_preferences, self.op_key(p), p.reads(who), p.websocket_opt_outs]
        (reply,) = yield [Script("erase_recipient", keys, [who, self.op_ttl_ms])]
        got = EraseReply.read(reply)
        return Erasure(recipient=who, contact_removed=got.contact_removed, inbox_entries_removed=got.inbox_entries)
