"""The rules a schedule call must meet, checked before anything is written. Pure: no I/O, no clock."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from ..errors import FieldError, NaiveDatetimeError, RecipientsError, ValidationError
from ..models import ON_LATE, PRIORITIES, OnLate, Payload, datetime_to_ms

MAX_RECIPIENTS = 10_000
MAX_RECIPIENT_LEN = 128
MAX_TITLE = 200
MAX_MESSAGE = 10_000
MAX_TYPE = 64
MAX_DATA_BYTES = 16 * 1024
MAX_IDEMPOTENCY_KEY = 200
MAX_COLLAPSE_KEY = 200
COLLAPSE_KEY_PATTERN = "^[^\x00-\x1f\x7f]+$"
"""What a collapse key may hold: anything but control characters (the HTTP schema says the same)."""
_CONTROL = re.compile("[\x00-\x1f\x7f]")
DEFAULT_LATE_AFTER_MS = 60_000  # on_late="skip" without late_after: a minute late is too late
MAX_DELAY_MS = 10 * 366 * 24 * 3600 * 1000  # ten years: later than that is a bug, not a plan
MIN_AT_MS = 0
MAX_AT_MS = 253402300799000  # 9999-12-31T23:59:59Z
MAX_ID = 2**63 - 1  # what Redis's integers and the HTTP paths take
MAX_SCRIPT_ID = 2**53  # ids are counted in Lua numbers (doubles): none is ever above this

NUL = "\x00"
_NO_NUL = "must not contain NUL characters (\\x00)"

_encode = msgspec.json.Encoder().encode


def recipients(values: Iterable[object]) -> list[str]:
    """Recipient ids as strings, duplicates collapsed to their first place."""
    if type(values) is list and len(values) == 1:  # the commonest call, and each layer checks it: no dict
        return [_recipient(values[0], 0)]
    if isinstance(values, str | bytes | int):
        raise RecipientsError(
            f"recipients must be a list of ids; got a single {type(values).__name__} {values!r}. "
            "Wrap it in a list: [id]",
            "recipients",
        )
    seen: dict[str, None] = {}
    for position, value in enumerate(values):
        seen.setdefault(_recipient(value, position), None)
        if len(seen) > MAX_RECIPIENTS:
            raise RecipientsError(
                f"at most {MAX_RECIPIENTS} recipients per call; got more. Split the list into several calls",
                "recipients",
            )
    if not seen:
        raise RecipientsError("recipients cannot be empty; give at least one recipient id", "recipients")
    return list(seen)


def recipient(value: object, where: str = "recipient") -> str:
    """One recipient id as a string: a non-empty string or an integer, at most 128 characters."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise RecipientsError(f"{where} must be a string or an integer; got {type(value).__name__} {value!r}", where)
    text = str(value)
    if not text or len(text) > MAX_RECIPIENT_LEN:
        raise RecipientsError(f"{where} must be 1 to {MAX_RECIPIENT_LEN} characters; got {len(text)}", where)
    if not _plain(text):
        raise RecipientsError(f"{where} cannot contain spaces or control characters; got {text!r}", where)
    return text


def _recipient(value: object, position: int) -> str:
    """``recipient(value, "recipients[<position>]")``, with the place named only when the value is refused."""
    if type(value) is str and 0 < len(value) <= MAX_RECIPIENT_LEN and _plain(value):
        return value
    return recipient(value, f"recipients[{position}]")


def _plain(text: str) -> bool:
    """No whitespace or control character: ``isprintable`` is False for every whitespace character but the
    ASCII space (a unit test checks every code point), so one C loop does what a Python one per character did."""
    return text.isprintable() and " " not in text


def user_id(value: object, field: str) -> str:
    """A user id other than a recipient (``created_by``): the same rules as a recipient id, as a FieldError."""
    try:
        return recipient(value, field)
    except RecipientsError as exc:
        raise FieldError(str(exc), field) from None


def notification_id(value: object, field: str = "notification_id") -> int:
    """A notification id as an int: an integer, or a string of ASCII digits (as the HTTP paths take), 0 to 2**63-1."""
    if isinstance(value, str) and value.isascii() and value.isdigit():  # '²'.isdigit() is True, hence isascii
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
        raise FieldError(f"{field} must be a whole number; got {_short(value)}", field)
    return value


MAX_SPREAD_MS = 7 * 24 * 3600 * 1000


def spread(value: object) -> int | None:
    """``spread`` as whole ms (None or 0: none): how long a call's recipients are spread over, at most a week."""
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        raise FieldError(f"spread must be a number of seconds or a timedelta; got {_short(value)}", "spread")
    if not 0 <= seconds <= MAX_SPREAD_MS / 1000:
        raise FieldError(f"spread must be between 0 s and 7 days; got {seconds:g} s", "spread")
    return round(seconds * 1000) or None


def notification_type(value: object) -> str:
    """A notification type as pause and resume take it: the text a schedule call's ``type`` is, but ``*``."""
    _text("type", value, MAX_TYPE, allow_empty=False)
    if value == "*":
        raise FieldError("type '*' is not a type; to pause or resume everything, give no type", "type")
    return str(value)


def payload(
    title: object,
    message: object,
    type: object,
    priority: object,
    data: object,
    created_by: str | None = None,
    channels: Iterable[str] = (),
    expiry: Expiry | None = None,
    collapse_key: str | None = None,
    spread_ms: int | None = None,
    digesting: Digesting | None = None,
) -> Payload:
    """The stored payload, after checking each field's kind and size (``expiry`` and ``collapse_key`` already
    checked by ``expiry`` and ``collapse_key``)."""
    _text("title", title, MAX_TITLE, allow_empty=False)
    _text("message", message, MAX_MESSAGE, allow_empty=True)
    _text("type", type, MAX_TYPE, allow_empty=False)
    if priority not in PRIORITIES:
        raise FieldError(f"priority must be one of {', '.join(PRIORITIES)}; got {priority!r}", "priority")
    if data is None:
        data = {}
    elif not isinstance(data, dict):
        raise FieldError(f"data must be a JSON object (a dict); got {type_name(data)}", "data")
    elif data:  # an empty dict has nothing to check
        _check_data(data)
    return Payload(
        title=str(title),
        message=str(message),
        type=str(type),
        priority=priority,  # type: ignore[arg-type]
        data=data,
        created_by=created_by,
        channels=list(channels),
        collapse_key=collapse_key,
        spread_ms=spread_ms,
        digest_key=digesting.key if digesting else None,
        digest_window_ms=digesting.window_ms if digesting else None,
        digest_max=digesting.most if digesting else None,
        expires_at=expiry.expires_at_ms if expiry else None,
        on_late=expiry.on_late if expiry else "send",
        late_after_ms=expiry.late_after_ms if expiry else None,
    )


class Expiry(msgspec.Struct, frozen=True):
    """When a notification stops being worth sending: at ``expires_at_ms``, and (``on_late`` "skip") when
    claimed more than ``late_after_ms`` after its due time."""

    expires_at_ms: int | None = None
    on_late: OnLate = "send"
    late_after_ms: int | None = None


def expiry(
    expires_at: object, on_late: object, late_after: object, due_at_ms: int | None, delay_ms: int, now_ms: int
) -> Expiry | None:
    """The call's expiry, or None when it has none. ``expires_at`` must come after the due time (``due_at_ms``, or
    ``now_ms`` plus ``delay_ms`` by the caller's rough clock): a notification that could never be sent is a
    mistake to report, not to store."""
    if on_late not in ON_LATE:
        raise FieldError(f"on_late must be one of {', '.join(ON_LATE)}; got {_short(on_late)}", "on_late")
    late_ms: int | None = None
    if late_after is not None:
        if on_late != "skip":
            raise FieldError("late_after applies only with on_late='skip'; drop it or set on_late='skip'", "late_after")
        seconds = late_after.total_seconds() if isinstance(late_after, timedelta) else late_after
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not math.isfinite(seconds):
            raise FieldError(f"late_after must be a finite number of seconds; got {_short(late_after)}", "late_after")
        if not 0 <= seconds * 1000 <= MAX_DELAY_MS:
            raise FieldError(f"late_after must be between 0 s and ten years; got {seconds} s", "late_after")
        late_ms = round(seconds * 1000)
    elif on_late == "skip":
        late_ms = DEFAULT_LATE_AFTER_MS
    until: int | None = None
    if expires_at is not None:
        if not isinstance(expires_at, datetime):
            raise FieldError(f"expires_at must be a datetime; got {type_name(expires_at)}", "expires_at")
        until = at_ms(expires_at, now_ms, "expires_at")
        due = due_at_ms if due_at_ms is not None else now_ms + delay_ms
        if until <= due:
            raise FieldError(
                f"expires_at must be after the notification is due ({_iso(due)}); got {expires_at.isoformat()}",
                "expires_at",
            )
    if until is None and late_ms is None:
        return None
    return Expiry(until, "skip" if late_ms is not None else "send", late_ms)


def collapse_key(key: object) -> str | None:
    """The collapse key as given, if it is a usable one (1 to 200 characters, no control characters)."""
    if key is None:
        return None
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_COLLAPSE_KEY or _CONTROL.search(key):
        raise FieldError(
            f"collapse_key must be 1 to {MAX_COLLAPSE_KEY} characters with no control characters; got {_short(key)}",
            "collapse_key",
        )
    return key


MAX_DIGEST_KEY = 200
MIN_DIGEST_WINDOW_MS = 1000
MAX_DIGEST_WINDOW_MS = 24 * 3600 * 1000
MIN_DIGEST_MAX = 2
MAX_DIGEST_MAX = 1000
DEFAULT_DIGEST_WINDOW_MS = 300_000
DEFAULT_DIGEST_MAX = 50


class Digesting(msgspec.Struct, frozen=True):
    """How a notification joins its recipient's digest: the key, how long a digest it opens stays open after that
    member's due time, and how many members it takes at most (it goes out at once when full)."""

    key: str
    window_ms: int
    most: int


def digest(
    key: object, window: object, most: object, default_window_ms: int, default_most: int, expiry: Expiry | None = None
) -> Digesting | None:
    """The digest options, checked: ``key`` as a collapse key is (1 to 200 characters, no control characters);
    ``window`` (seconds or a timedelta, 1 s to 1 day) and ``most`` (2 to 1000) only with a key, each defaulting
    to the configured value. A member waits up to the window in its digest and is claimed again at its close, so
    with ``on_late`` skip (``expiry``) its ``late_after`` must be longer than the window."""
    if key is None:
        for name, value in (("digest_window", window), ("digest_max", most)):
            if value is not None:
                raise FieldError(f"{name} goes with digest_key; give a digest_key too, or leave {name} out", name)
        return None
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_DIGEST_KEY or _CONTROL.search(key):
        raise FieldError(
            f"digest_key must be 1 to {MAX_DIGEST_KEY} characters with no control characters; got {_short(key)}",
            "digest_key",
        )
    window_ms = default_window_ms
    if window is not None:
        seconds = window.total_seconds() if isinstance(window, timedelta) else window
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
            raise FieldError(
                f"digest_window must be a number of seconds or a timedelta; got {_short(window)}", "digest_window"
            )
        window_ms = round(seconds * 1000)
    if not MIN_DIGEST_WINDOW_MS <= window_ms <= MAX_DIGEST_WINDOW_MS:
        raise FieldError(f"digest_window must be between 1 s and 1 day; got {window_ms / 1000:g} s", "digest_window")
    count = default_most if most is None else most
    if isinstance(count, bool) or not isinstance(count, int) or not MIN_DIGEST_MAX <= count <= MAX_DIGEST_MAX:
        raise FieldError(
            f"digest_max must be a whole number from {MIN_DIGEST_MAX} to {MAX_DIGEST_MAX}; got {_short(count)}",
            "digest_max",
        )
    if expiry is not None and expiry.on_late == "skip" and (expiry.late_after_ms or 0) <= window_ms:
        raise FieldError(
            f"with digest_key and on_late skip, late_after must be longer than digest_window (a member waits up to "
            f"the window in its digest); got late_after {(expiry.late_after_ms or 0) / 1000:g} s, digest_window "
            f"{window_ms / 1000:g} s",
            "late_after",
        )
    return Digesting(key, window_ms, count)


def batch_id(value: object, partitions: int) -> list[tuple[int, int]]:
    """The parts a batch id names, (first id, count) each: ``"<first>x<count>"`` per partition, joined by ``-``,
    as ``batch_of`` writes it."""
    text = value if isinstance(value, str) else ""
    parts: list[tuple[int, int]] = []
    for part in text.split("-") if text else ():
        first, _, count = part.partition("x")
        if not (first.isascii() and first.isdigit() and count.isascii() and count.isdigit()):
            parts = []
            break
        parts.append((int(first), int(count)))
    seen = {first % partitions for first, _ in parts}
    if (
        not parts
        or len(seen) != len(parts)
        or any(not 1 <= count <= MAX_RECIPIENTS or not 0 < first <= MAX_SCRIPT_ID for first, count in parts)
        or sum(count for _, count in parts) > MAX_RECIPIENTS
    ):
        raise FieldError(
            f"batch_id must be what a schedule call returned, e.g. '12x3' or '5x2-2x4'; got {_short(value)}", "batch_id"
        )
    return parts


def current_batch_id(value: object, partitions: int, id_base: int) -> list[tuple[int, int]]:
    """``batch_id`` for the current keyspace generation: a batch scheduled before a reshard (its ids below the
    generation's ``id_base``) is refused, since its ids step by the old partition count and its pending
    notifications now have new ids."""
    text = value if isinstance(value, str) else ""
    firsts = [part.partition("x")[0] for part in text.split("-")] if id_base else []
    if any(first.isascii() and first.isdigit() and int(first) < id_base for first in firsts):
        raise FieldError(
            f"batch {_short(value)} was scheduled before the keyspace was resharded (zsched reshard), and batch "
            "operations do not reach across the move; change its notifications by id instead (status, cancel, "
            "reschedule and edit follow an old id to the one it moved to)",
            "batch_id",
        )
    return batch_id(value, partitions)


def batch_of(parts: Iterable[tuple[int, int]]) -> str:
    """The batch id of a schedule call whose part in each partition starts at ``first`` and has ``count`` ids."""
    return "-".join(f"{first}x{count}" for first, count in parts)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def content(body: Payload, title: object, message: object, data: object) -> Payload:
    """``body`` with the given title, message and data (None: unchanged), each checked as ``payload`` checks it."""
    if title is None and message is None and data is None:
        raise FieldError("give at least one of title, message and data to change", "title")
    changes: dict[str, Any] = {}
    if title is not None:
        _text("title", title, MAX_TITLE, allow_empty=False)
        changes["title"] = title
    if message is not None:
        _text("message", message, MAX_MESSAGE, allow_empty=True)
        changes["message"] = message
    if data is not None:
        if not isinstance(data, dict):
            raise FieldError(f"data must be a JSON object (a dict); got {type_name(data)}", "data")
        if data:
            _check_data(data)
        changes["data"] = data
    return msgspec.structs.replace(body, **changes)


def _check_data(data: dict[str, Any]) -> None:
    try:
        encoded = _encode(data)
    except (TypeError, ValueError, OverflowError) as exc:
        raise FieldError(f"data must be JSON-encodable: {exc}", "data") from None
    if len(encoded) > MAX_DATA_BYTES:
        raise FieldError(f"data must be at most {MAX_DATA_BYTES} bytes as JSON; got {len(encoded)}", "data")
    if b"\\u0000" in encoded:  # JSON writes a NUL as \u0000: only then walk the data to say where it is
        _no_nul_in_data(data)


def due(at: datetime | None, delay: timedelta | float | None, now_ms: int) -> tuple[int | None, int]:
    """``(at_ms, delay_ms)`` for the script: exactly one of ``at`` and ``delay`` must be given.

    ``now_ms`` is the caller's rough clock, used only to reject absurd times; whether ``at`` is in the
    past is decided by the server's clock inside the script.
    """
    if (at is None) == (delay is None):
        raise ValidationError("give exactly one of at= (a timezone-aware datetime) or delay=", "scheduled_at")
    if at is not None:
        return at_ms(at, now_ms), 0
    assert delay is not None
    seconds = delay.total_seconds() if isinstance(delay, timedelta) else delay
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not math.isfinite(seconds):
        raise ValidationError(f"delay must be a finite number of seconds; got {delay!r}", "delay")
    if seconds < 0:
        raise ValidationError(f"delay cannot be negative; got {seconds} s", "delay")
    delay_ms = round(seconds * 1000)
    if delay_ms > MAX_DELAY_MS:
        raise ValidationError(f"delay must be at most ten years; got {seconds:.0f} s", "delay")
    return None, delay_ms


def at_ms(at: object, now_ms: int, field: str = "scheduled_at") -> int:
    """An aware datetime as epoch ms, rejecting naive values and years zsched cannot mean."""
    if not isinstance(at, datetime):
        raise ValidationError(f"{field} must be a datetime; got {type_name(at)}", field)
    if at.tzinfo is None or at.utcoffset() is None:
        raise NaiveDatetimeError(
            f"{field} must be timezone-aware; got {at.isoformat()} with no offset. "
            "Add one, e.g. datetime(..., tzinfo=timezone.utc) or '2025-12-28T10:00:00Z'",
            field,
        )
    value = datetime_to_ms(at)
    if value < MIN_AT_MS or value > now_ms + MAX_DELAY_MS:
        raise ValidationError(f"{field} must be between now and ten years from now; got {at.isoformat()}", field)
    return value


def idempotency_key(key: object) -> str | None:
    """The key as given, if it is a usable one."""
    if key is None:
        return None
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY or not key.isprintable():
        raise ValidationError(
            f"idempotency_key must be 1 to {MAX_IDEMPOTENCY_KEY} printable characters; got {key!r}", "idempotency_key"
        )
    return key


def _text(field: str, value: object, limit: int, allow_empty: bool) -> None:
    if not isinstance(value, str):
        raise FieldError(f"{field} must be a string; got {type_name(value)}", field)
    if not value and not allow_empty:
        raise FieldError(f"{field} cannot be empty", field)
    if len(value) > limit:
        raise FieldError(f"{field} must be at most {limit} characters; got {len(value)}", field)
    if NUL in value:
        raise FieldError(f"{field} {_NO_NUL}; got one at position {value.index(NUL)}", field)


def _no_nul_in_data(data: dict[str, Any]) -> None:
    """Reject a NUL in any key or string value of ``data``, naming the path to it (``data['a'][0]``).

    ``data`` is already known to encode to at most 16 KiB of JSON, which bounds the walk; the walk uses a
    stack, not recursion, so deep nesting cannot overflow Python's stack.
    """
    stack: list[tuple[str, object]] = [("data", data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            if NUL in value:
                raise FieldError(f"{path} {_NO_NUL}; got one at position {value.index(NUL)}", "data")
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str) and NUL in key:
                    raise FieldError(
                        f"the key {_short(key)} in {path} {_NO_NUL}; got one at position {key.index(NUL)}", "data"
                    )
                stack.append((f"{path}[{_short(key)}]", item))
        elif isinstance(value, list | tuple):
            stack.extend((f"{path}[{i}]", item) for i, item in enumerate(value))


def _short(key: object, limit: int = 40) -> str:
    text = repr(key)
    return text if len(text) <= limit else f"{text[: limit - 4]}...{text[-1]}"


def type_name(value: Any) -> str:
    """A short description of a value's kind, for error messages."""
    return "null" if value is None else type(value).__name__
