"""Opt-outs: the channels through which a recipient does not want a notification type ("no SMS for marketing").

They are kept in the recipient's contact data as ``opt_outs``, channel -> types (``*`` for every type, and
channel ``*`` for every channel), and read when each notification is sent: a change made after scheduling
applies to what is still pending. A notification sent through the channels left; with none left it ends
``skipped``, with the reason. This module checks what a caller gives and decides what a stored table blocks;
it does no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from ..errors import FieldError
from . import validation

EVERY = "*"
"""As a type: every type; as a channel: every channel."""
MAX_OPT_OUTS = 100
"""Most (channel, type) entries one recipient's opt-outs hold, so their contact stays small."""
MAX_CHANNEL = 64
CHANNEL_PATTERN = r"^(?:\*|[A-Za-z0-9_-]{1,64})$"
"""A channel as an opt-out names it: a channel name (letters, digits, '-', '_') or ``*``."""
OPT_OUT_ENTRY_PATTERN = r"^(?:\*|[A-Za-z0-9_-]{1,64}):[^\x00]+$"
"""One opt-out as ``"channel:type"`` (the HTTP API's schema states it)."""
_CHANNEL = re.compile(CHANNEL_PATTERN)
ENTRY_EXAMPLE = "sms:marketing"


def channel(value: object, field: str = "opt_outs") -> str:
    """A channel name as an opt-out takes it (``sms``, ``email``, ``webhook``, ``websocket``, a registered one, or
    ``*`` for every channel)."""
    if not isinstance(value, str) or not _CHANNEL.match(value) or value.endswith("\n"):
        shown = repr(value[:40]) if isinstance(value, str) else validation.type_name(value)
        raise FieldError(
            f"an opt-out's channel is a channel name (letters, digits, '-' and '_', at most {MAX_CHANNEL}, e.g. sms) "
            f"or '*' for every channel; got {shown}",
            field,
        )
    return value


def notification_type(value: object, field: str = "opt_outs") -> str:
    """A notification type as an opt-out takes it: any type (1 to 64 characters), or ``*`` for every type."""
    if value == EVERY:
        return EVERY
    try:
        validation.notification_type(value)
    except FieldError as exc:
        raise FieldError(f"an opt-out's {exc} (or '*' for every type)", field) from None
    return str(value)


def entry(value: object, field: str) -> tuple[str, str]:
    """One opt-out given as ``"channel:type"`` (``sms:marketing``, ``email:*``, ``*:marketing``)."""
    if not isinstance(value, str) or ":" not in value:
        shown = repr(value[:80]) if isinstance(value, str) else validation.type_name(value)
        raise FieldError(
            f"{field} takes 'channel:type' entries, e.g. {ENTRY_EXAMPLE!r} or 'email:*' ('*': every type, or as the "
            f"channel every channel); got {shown}",
            field,
        )
    name, _, typ = value.partition(":")
    return channel(name, field), notification_type(typ, field)


def entries(values: object, field: str) -> list[tuple[str, str]]:
    """A list of ``"channel:type"`` opt-outs (a single string is one entry), duplicates dropped."""
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, Iterable) or isinstance(values, Mapping):
        raise FieldError(f"{field} must be a list of 'channel:type' entries; got {validation.type_name(values)}", field)
    found = list(dict.fromkeys(entry(v, field) for v in values))
    if len(found) > MAX_OPT_OUTS:
        raise FieldError(f"{field} takes at most {MAX_OPT_OUTS} entries; got {len(found)}", field)
    return found


def table(value: object, field: str = "opt_outs") -> dict[str, list[str]]:
    """A whole opt-out table, channel -> types (``{"sms": ["marketing"], "email": ["*"]}``); channels with no type
    are dropped."""
    if not isinstance(value, Mapping):
        raise FieldError(
            f'{field} must be an object of channel -> list of types, e.g. {{"sms": ["marketing"]}}; got '
            f"{validation.type_name(value)}",
            field,
        )
    out: dict[str, list[str]] = {}
    for name, types in value.items():
        if isinstance(types, str) or not isinstance(types, Sequence):
            raise FieldError(
                f'{field}[{str(name)[:40]!r}] must be a list of types, e.g. ["marketing"]; got '
                f"{validation.type_name(types)}",
                field,
            )
        kept = list(dict.fromkeys(notification_type(t, field) for t in types))
        if kept:
            out[channel(name, field)] = kept
    total = sum(len(types) for types in out.values())
    if total > MAX_OPT_OUTS:
        raise FieldError(f"{field} holds at most {MAX_OPT_OUTS} channel and type entries; got {total}", field)
    return out


def blocked(opt_outs: Mapping[str, Sequence[str]], channel_name: str, type_name: str) -> bool:
    """Whether ``opt_outs`` keeps notifications of ``type_name`` from going through ``channel_name``."""
    for name in (channel_name, EVERY):
        types = opt_outs.get(name)
        if types and (type_name in types or EVERY in types):
            return True
    return False


def blocks_websocket(opt_outs: Mapping[str, Sequence[str]]) -> bool:
    """Whether any opt-out may apply to the websocket channel (claim.lua then leaves its recipient to the worker)."""
    return bool(opt_outs.get("websocket") or opt_outs.get(EVERY))


def reason(recipient: str, channels: Sequence[str], type_name: str) -> str:
    """Why a notification was not sent at all: its recipient opted out of every channel it names."""
    names = list(channels)
    said = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"{recipient} opted out of {said} for type {type_name!r}"
