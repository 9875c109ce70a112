"""Each validation rule raises a typed error that names the field and says how to fix it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from zsched.engine import validation
from zsched.errors import FieldError, NaiveDatetimeError, RecipientsError, ValidationError


def test_recipients_collapse_duplicates_and_keep_order() -> None:
    assert validation.recipients([3, "a", 3, "3", "b"]) == ["3", "a", "b"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], "cannot be empty"),
        ("alice", "must be a list of ids"),
        ([""], r"recipients\[0\] must be 1 to 128"),
        (["x" * 129], "must be 1 to 128"),
        ([True], "must be a string or an integer"),
        ([1.5], "must be a string or an integer"),
        ([None], "must be a string or an integer"),
        (["a b"], "cannot contain spaces"),
        (["a\x00"], "control characters"),
        ([str(i) for i in range(10_001)], "at most 10000 recipients"),
    ],
)
def test_bad_recipients(value: object, message: str) -> None:
    with pytest.raises(RecipientsError, match=message) as caught:
        validation.recipients(value)  # type: ignore[arg-type]
    assert caught.value.field is not None and caught.value.field.startswith("recipients")


def test_recipient_rules_hold_for_every_code_point() -> None:
    """The quick check (one ``isprintable`` and a search for the space) refuses exactly the characters the
    rule names: whitespace, and what Unicode calls Other or Separator."""
    import sys

    for code in range(sys.maxunicode + 1):
        c = chr(code)
        refused = c.isspace() or not c.isprintable()
        if refused != (not validation._plain(c)):
            pytest.fail(f"U+{code:04X} is {'refused' if refused else 'allowed'} by the rule, not by the check")
    for c in " \t\n\x1f\x85\xa0\u2028\u3000\ufeff":
        with pytest.raises(RecipientsError, match=r"recipients\[1\] cannot contain spaces or control"):
            validation.recipients(["ok", f"a{c}b"])


def test_an_empty_or_falsy_data_is_checked_as_before() -> None:
    assert validation.payload("t", "m", "system", "normal", {}).data == {}
    assert validation.payload("t", "m", "system", "normal", None).data == {}
    for falsy in ([], "", 0, False):
        with pytest.raises(FieldError, match="data must be a JSON object"):
            validation.payload("t", "m", "system", "normal", falsy)


def test_ten_thousand_recipients_are_fine() -> None:
    assert len(validation.recipients(range(10_000))) == 10_000


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"title": "x" * 201}, "title", "at most 200"),
        ({"title": ""}, "title", "cannot be empty"),
        ({"title": 5}, "title", "must be a string"),
        ({"message": "x" * 10_001}, "message", "at most 10000"),
        ({"priority": "critical"}, "priority", "low, normal, high, urgent"),
        ({"data": [1, 2]}, "data", "JSON object"),
        ({"data": {"blob": "x" * 17_000}}, "data", "at most 16384 bytes"),
        ({"data": {"when": object()}}, "data", "JSON-encodable"),
        ({"title": "hello\x00"}, "title", r"title must not contain NUL characters \(\\x00\); got one at position 5"),
        ({"message": "\x00"}, "message", "message must not contain NUL characters.*position 0"),
        ({"type": "sys\x00tem"}, "type", "type must not contain NUL characters.*position 3"),
        ({"data": {"k": "v\x00"}}, "data", r"data\['k'\] must not contain NUL.*position 1"),
        ({"data": {"k\x00": "v"}}, "data", r"the key 'k\\x00' in data must not contain NUL.*position 1"),
        ({"data": {"a": [1, {"b": ["ok", "\x00"]}]}}, "data", r"data\['a'\]\[1\]\['b'\]\[1\] must not contain NUL"),
        ({"data": {"a": {"b": {"\x00": None}}}}, "data", r"the key '\\x00' in data\['a'\]\['b'\] must not"),
    ],
)
def test_bad_fields(kwargs: dict[str, object], field: str, message: str) -> None:
    args: dict[str, object] = {"title": "t", "message": "m", "type": "system", "priority": "normal", "data": None}
    args.update(kwargs)
    with pytest.raises(FieldError, match=message) as caught:
        validation.payload(**args)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_text_other_than_nul_is_kept_verbatim() -> None:
    """Only NUL is refused: other control characters, unicode and Lua-looking text are data like any other."""
    odd = "a\x01b\x07c\x1bd\x7fe\x85f\u2028g\u202e😀 ]]..redis.call('FLUSHALL')..[["
    data = {odd: [odd, {"k": odd}], "\\x00": "\\u0000"}  # a backslash and digits are not a NUL
    body = validation.payload(odd[:200], odd, odd[:64], "normal", data)
    assert (body.title, body.message, body.type, body.data) == (odd[:200], odd, odd[:64], data)


def test_naive_datetime_says_how_to_fix() -> None:
    with pytest.raises(NaiveDatetimeError, match="timezone-aware.*tzinfo=timezone.utc"):
        validation.due(datetime(2030, 1, 1), None, 0)


@pytest.mark.parametrize(
    ("at", "delay", "message"),
    [
        (None, None, "exactly one of"),
        (datetime(2030, 1, 1, tzinfo=UTC), 5, "exactly one of"),
        (None, -1, "cannot be negative"),
        (None, float("nan"), "finite"),
        (None, timedelta(days=4000), "at most ten years"),
        (datetime(9999, 1, 1, tzinfo=UTC), None, "between now and ten years"),
        (datetime(1960, 1, 1, tzinfo=UTC), None, "between now and ten years"),
    ],
)
def test_bad_times(at: datetime | None, delay: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        validation.due(at, delay, 1_800_000_000_000)  # type: ignore[arg-type]


def test_due_passes_at_or_delay_through() -> None:
    at = datetime(2030, 1, 1, tzinfo=UTC)
    assert validation.due(at, None, 1_800_000_000_000) == (1_893_456_000_000, 0)
    assert validation.due(None, timedelta(seconds=1.5), 0) == (None, 1500)
