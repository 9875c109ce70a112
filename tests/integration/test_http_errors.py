"""Bad input over HTTP: each error code with the JSON error shape, nothing written, never a 500."""

from __future__ import annotations

import json

import pytest
import redis

from tests.integration.http_support import TestClient, Tokens, client, future, schedule_body, settings, tokens

__all__ = ["client", "settings", "tokens"]

SCHEDULE = "/api/notifications/schedule/"


@pytest.fixture
def service(tokens: Tokens) -> dict[str, str]:
    return tokens.service()


def _nothing_written(redis_url: str, prefix: str) -> bool:
    r = redis.Redis.from_url(redis_url)
    # tokens, rate buckets and the layout record (written once, at start) are not notification data
    keys = [k for k in r.scan_iter(match=f"{prefix}:*") if not any(t in k for t in (b"{auth}", b"{rate:", b"{meta}"))]
    r.close()
    return not keys


def _error(r: object, status: int, field: str | None = None) -> dict[str, object]:
    assert r.status_code == status, r.text  # type: ignore[attr-defined]
    body: dict[str, object] = r.json()  # type: ignore[attr-defined]
    assert set(body) >= {"error", "detail", "field"} and body["detail"], body
    if field is not None:
        assert body["field"] == field, body
    return body


def test_400_malformed_json(client: TestClient, service: dict[str, str], redis_url: str, prefix: str) -> None:
    for raw in (b"{", b'{"recipients": [1,]}', b"\xff\xfe", b"", b"nul"):
        _error(client.post(SCHEDULE, headers={**service, "Content-Type": "application/json"}, content=raw), 400)
    assert _nothing_written(redis_url, prefix)


def test_415_not_json(client: TestClient, service: dict[str, str]) -> None:
    body = json.dumps(schedule_body([1]))
    for content_type in (None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        headers = dict(service) if content_type is None else {**service, "Content-Type": content_type}
        _error(client.post(SCHEDULE, headers=headers, content=body), 415, "Content-Type")
    ok = client.post(SCHEDULE, headers={**service, "Content-Type": "application/json; charset=utf-8"}, content=body)
    assert ok.status_code == 201


def test_413_body_over_1_mib(client: TestClient, service: dict[str, str], redis_url: str, prefix: str) -> None:
    big = schedule_body([1], data={"blob": "x" * (1024 * 1024 + 10)})
    _error(client.post(SCHEDULE, headers=service, json=big), 413)

    def chunks():  # no Content-Length: the limit holds while streaming too
        for _ in range(20):
            yield b" " * (64 * 1024)
        yield json.dumps(schedule_body([1])).encode()

    _error(client.post(SCHEDULE, headers={**service, "Content-Type": "application/json"}, content=chunks()), 413)
    assert _nothing_written(redis_url, prefix)


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"scheduled_at": "2020-01-01T00:00:00Z"}, "scheduled_at", "must be in the future"),
        ({"scheduled_at": "2030-01-01T10:00:00"}, "scheduled_at", "timezone-aware"),
        ({"scheduled_at": "tomorrow"}, "scheduled_at", "datetime"),
        ({"scheduled_at": None}, "scheduled_at", "null"),
        ({"recipients": []}, "recipients", "cannot be empty"),
        ({"recipients": list(range(10_001))}, "recipients", "at most 10000"),
        ({"recipients": 5}, "recipients", "array"),
        ({"recipients": [True]}, "recipients[0]", "bool"),
        ({"recipients": [""]}, "recipients[0]", "1 to 128"),
        ({"recipients": ["two words"]}, "recipients[0]", "spaces"),
        ({"recipients": [{"id": 1}]}, "recipients[0]", "object"),
        ({"priority": "critical"}, "priority", "one of low, normal, high, urgent"),
        ({"title": ""}, "title", "cannot be empty"),
        ({"title": "t" * 201}, "title", "at most 200"),
        ({"title": 7}, "title", "str"),
        ({"message": "m" * 10_001}, "message", "at most 10000"),
        ({"type": ""}, "type", "cannot be empty"),
        ({"data": [1, 2]}, "data", "object"),
        ({"data": {"blob": "x" * 20_000}}, "data", "at most 16384 bytes"),
    ],
)
def test_422_rules(
    client: TestClient,
    service: dict[str, str],
    redis_url: str,
    prefix: str,
    change: dict[str, object],
    field: str,
    words: str,
) -> None:
    body = _error(client.post(SCHEDULE, headers=service, json={**schedule_body([1, 2]), **change}), 422, field)
    assert words in str(body["detail"]), body
    assert _nothing_written(redis_url, prefix)


def test_422_missing_field_and_not_an_object(client: TestClient, service: dict[str, str]) -> None:
    body = schedule_body([1])
    del body["title"]
    assert "title" in str(_error(client.post(SCHEDULE, headers=service, json=body), 422)["detail"])
    _error(client.post(SCHEDULE, headers=service, json=[body]), 422)
    _error(client.post(SCHEDULE, headers=service, json="hello"), 422)
    r = client.post(SCHEDULE, headers={**service, "Idempotency-Key": "k" * 65}, json=schedule_body([1]))
    _error(r, 422, "Idempotency-Key")


def test_unknown_fields_are_ignored(client: TestClient, service: dict[str, str]) -> None:
    r = client.post(SCHEDULE, headers=service, json={**schedule_body([1]), "colour": "blue"})
    assert r.status_code == 201


def test_404_and_405(client: TestClient, service: dict[str, str]) -> None:
    for path in (
        "/api/notifications/424242/schedule_status/",
        "/api/notifications/abc/schedule_status/",
        f"/api/notifications/{2**80}/schedule_status/",
        "/api/nothing-here",
        "/",
    ):
        _error(client.get(path, headers=service), 404)
    _error(client.delete(f"/api/notifications/{2**80}/cancel_scheduled/", headers=service), 404)
    r = client.get(SCHEDULE, headers=service)
    _error(r, 405)
    assert "POST" in r.headers["Allow"]
    _error(client.post("/api/notifications/1/cancel_scheduled/", headers=service), 405)
    _error(client.put("/api/notifications/1/", headers=service, json={}), 405)


def test_patch_errors(client: TestClient, tokens: Tokens) -> None:
    me = tokens.headers("alice")
    (nid,) = client.post(SCHEDULE, headers=me, json=schedule_body(["alice"])).json()["notification_ids"]
    path = f"/api/notifications/{nid}/"
    _error(client.patch(path, headers=me, content=b"{"), 415)
    _error(client.patch(path, headers={**me, "Content-Type": "application/json"}, content=b"{"), 400)
    _error(client.patch(path, headers=me, json={}), 422)
    _error(client.patch(path, headers=me, json={"scheduled_at": "2030-01-01T00:00:00"}), 422, "scheduled_at")
    _error(client.patch(path, headers=me, json={"scheduled_at": future(20 * 366 * 86400)}), 422, "scheduled_at")


ADVERSARIAL = [
    b"null",
    b"0",
    b"[]",
    b"{}",
    b'{"recipients": null}',
    b'{"recipients": [null]}',
    b'{"recipients": [1e308]}',
    b'{"recipients": [123456789012345678901234567890], "title": "t", "message": "m", '
    b'"scheduled_at": "2030-01-01T00:00:00Z"}',
    b'{"recipients": [-1], "title": "t", "message": "m", "scheduled_at": "9999-12-31T23:59:59Z"}',
    b'{"recipients": [1], "title": "t", "message": "m", "scheduled_at": "0001-01-01T00:00:00Z"}',
    b'{"recipients": [1], "title": "t", "message": "m", "scheduled_at": "2030-02-30T00:00:00Z"}',
    b'{"recipients": [1], "title": "t", "message": "m", "scheduled_at": 1893456000}',
    b'{"recipients": [1], "title": "\\u0000", "message": "\\ud800", "scheduled_at": "2030-01-01T00:00:00+25:00"}',
    b'{"recipients": ["\\u0000"], "title": "t", "message": "m", "scheduled_at": "2030-01-01T00:00:00Z"}',
    b'{"recipients": [1], "title": "t", "message": "m", "scheduled_at": "2030-01-01T00:00:00Z", "data": '
    + b'{"a":' * 2000
    + b"1"
    + b"}" * 2000
    + b"}",
    b'{"recipients": [1], "title": "t", "message": "m", "scheduled_at": "2030-01-01T00:00:00Z", "priority": null}',
    b'{"recipients": [1], "title": "t", "message": "m", "scheduled_at": "2030-01-01T00:00:00Z", "data": null}',
    b"[" * 100_000,
    b'{"recipients": [1], "title": "t", "message": "m", "scheduled_at": "2030-01-01T00:00:00Z", "data": '
    + b'{"a":' * 600
    + b"1"
    + b"}" * 600
    + b"}",
]


# What each ADVERSARIAL body gets as a reschedule (PATCH reads only scheduled_at): 422 when it is not an
# object, lacks scheduled_at or holds a bad one; 400 when it is not JSON or nests too deeply to decode; 200
# when, under the junk the schedule call chokes on, it is a valid move to 2030-01-01.
PATCH_STATUS = [422, 422, 422, 422, 422, 422, 422, 200, 422, 422, 422, 422, 400, 200, 400, 200, 200, 422, 200]


@pytest.mark.parametrize(("raw", "patch_status"), list(zip(ADVERSARIAL, PATCH_STATUS, strict=True)), ids=range(19))
def test_adversarial_bodies_never_500(
    client: TestClient, service: dict[str, str], raw: bytes, patch_status: int
) -> None:
    r = client.post(SCHEDULE, headers={**service, "Content-Type": "application/json"}, content=raw)
    assert r.status_code in (201, 400, 422), r.text
    assert r.headers["content-type"] == "application/json"
    # PATCH a real, pending notification the caller owns, so the body is read rather than refused by a 404.
    (nid,) = client.post(SCHEDULE, headers=service, json=schedule_body(["billing"])).json()["notification_ids"]
    path = f"/api/notifications/{nid}/"
    before = client.get(path, headers=service).json()
    assert before["scheduled_status"] == "pending", before
    r = client.patch(path, headers={**service, "Content-Type": "application/json"}, content=raw)
    if patch_status == 200:
        assert r.status_code == 200, r.text
        before["scheduled_at"] = "2030-01-01T00:00:00Z"  # the one change a valid reschedule makes
    else:
        _error(r, patch_status)
    assert client.get(path, headers=service).json() == before


def test_patch_over_1_mib_or_not_json_changes_nothing(client: TestClient, service: dict[str, str]) -> None:
    (nid,) = client.post(SCHEDULE, headers=service, json=schedule_body(["billing"])).json()["notification_ids"]
    path = f"/api/notifications/{nid}/"
    before = client.get(path, headers=service).json()
    move = json.dumps({"scheduled_at": future(7200)}).encode()
    big = move[:-1] + b', "pad": "' + b"x" * (1024 * 1024) + b'"}'
    _error(client.patch(path, headers={**service, "Content-Type": "application/json"}, content=big), 413)
    _error(client.patch(path, headers={**service, "Content-Type": "text/plain"}, content=move), 415, "Content-Type")
    assert client.get(path, headers=service).json() == before


@pytest.mark.parametrize("raw", ["²", "١٢", "-1", "1.5", "1e3", " 7", "0x10", "9" * 40])
def test_query_numbers_must_be_ascii_digits(client: TestClient, service: dict[str, str], raw: str) -> None:
    """Found by fuzzing: '²'.isdigit() is True but int('²') raises, which was a 500."""
    for name in ("limit", "cursor"):
        _error(client.get("/api/notifications/", headers=service, params={name: raw}), 422, name)


def test_integral_json_numbers_are_integer_recipients(client: TestClient, service: dict[str, str]) -> None:
    """Found by fuzzing: JSON Schema (and JSON) treat 7.0 as the integer 7, so the API must too."""
    r = client.post(SCHEDULE, headers=service, json=schedule_body([7.0, -3.0, 1.8e19]))
    assert r.status_code == 201, r.text
    status = client.get(f"/api/notifications/{r.json()['notification_ids'][0]}/", headers=service).json()
    assert status["recipient"] == "7"
    for bad, status in ((7.5, 422), (1e300, 422), (float("nan"), 400), (float("inf"), 400)):  # NaN is not JSON
        raw = json.dumps(schedule_body([bad])).encode()
        _error(client.post(SCHEDULE, headers={**service, "Content-Type": "application/json"}, content=raw), status)


def test_plain_http_to_the_websocket_endpoint_is_426(client: TestClient) -> None:
    r = client.get("/ws")
    assert _error(r, 426)["error"] == "upgrade_required" and r.headers["Upgrade"] == "websocket"


def test_empty_query_values_are_rejected_not_ignored(client: TestClient, service: dict[str, str]) -> None:
    """Found by fuzzing: ?status= was read as 'any status' though the document allows only the statuses."""
    for name in ("status", "limit", "cursor"):
        _error(client.get(f"/api/notifications/?{name}=", headers=service), 422, name)


@pytest.mark.parametrize("key", ["café", "a\u0085b", "\u200bkey", "k" * 65, ""])
def test_idempotency_key_is_printable_ascii(
    client: TestClient, service: dict[str, str], key: str, redis_url: str, prefix: str
) -> None:
    headers = [
        (b"authorization", service["Authorization"].encode()),
        (b"content-type", b"application/json"),
        (b"idempotency-key", key.encode("utf-8")),
    ]
    r = client.post(SCHEDULE, headers=headers, content=json.dumps(schedule_body([1])).encode())
    _error(r, 422, "Idempotency-Key")
    assert _nothing_written(redis_url, prefix)


# -- adversarial inputs: each a clear 4xx naming the field, nothing written -----------------------------


def _post_raw(client: TestClient, headers: dict[str, str], raw: bytes) -> object:
    return client.post(SCHEDULE, headers={**headers, "Content-Type": "application/json"}, content=raw)


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"[" * 100_000 + b"]" * 100_000, 422),  # deeply nested, under 1 MiB: not an object
        (
            b'{"recipients": [1], "title": "t", "message": "m", "scheduled_at": "2030-01-01T00:00:00Z", "data": '
            + b'{"a":' * 5000
            + b"1"
            + b"}" * 5000
            + b"}",
            400,
        ),
        (b'{"recipients": [1], "title": "t", "message": "' + b"x" * (1024 * 1024) + b'"}', 413),
        (b'{"recipients": [1], "title": "t", "message": "m", "scheduled_at": NaN}', 400),
        (b'{"recipients": [1], "title": "t", "message": "m", "scheduled_at": Infinity}', 400),
        (b'{"recipients": [1], "title": "t", "message": "m", "scheduled_at": -1}', 422),
        (b'{"recipients": [1], "title": "t", "message": "m", "scheduled_at": 1e309}', 422),
        (b'{"recipients": [NaN], "title": "t", "message": "m", "scheduled_at": "2030-01-01T00:00:00Z"}', 400),
        (b'{"recipients": [-Infinity], "title": "t", "message": "m", "scheduled_at": "2030-01-01T00:00:00Z"}', 400),
    ],
    ids=[
        "nested-arrays",
        "nested-data",
        "over-1-MiB",
        "NaN",
        "Infinity",
        "negative",
        "1e309",
        "NaN-recipient",
        "-Infinity-recipient",
    ],
)
def test_huge_nested_and_non_finite_bodies(
    client: TestClient, service: dict[str, str], redis_url: str, prefix: str, raw: bytes, status: int
) -> None:
    _error(_post_raw(client, service, raw), status)
    assert _nothing_written(redis_url, prefix)


@pytest.mark.parametrize(
    "at",
    [
        "9999-12-31T23:59:59Z",
        "1969-12-31T23:59:59Z",
        "1970-01-01T00:00:00Z",
        "0001-01-01T00:00:00Z",
        "-0001-01-01T00:00:00Z",
        "10000-01-01T00:00:00Z",
        "2030-01-01T00:00:00+24:00",
        "2030-13-01T00:00:00Z",
        "2030-01-01T25:00:00Z",
    ],
)
def test_timestamps_outside_what_can_be_meant(
    client: TestClient, service: dict[str, str], redis_url: str, prefix: str, at: str
) -> None:
    _error(client.post(SCHEDULE, headers=service, json=schedule_body([1], scheduled_at=at)), 422, "scheduled_at")
    assert _nothing_written(redis_url, prefix)


def test_reschedule_to_impossible_times_changes_nothing(client: TestClient, tokens: Tokens) -> None:
    me = tokens.headers("alice")
    (nid,) = client.post(SCHEDULE, headers=me, json=schedule_body(["alice"])).json()["notification_ids"]
    before = client.get(f"/api/notifications/{nid}/", headers=me).json()
    for at in ("9999-12-31T23:59:59Z", "1969-12-31T23:59:59Z", -5, None):
        _error(client.patch(f"/api/notifications/{nid}/", headers=me, json={"scheduled_at": at}), 422, "scheduled_at")
    for raw in (b'{"scheduled_at": NaN}', b'{"scheduled_at": -Infinity}'):
        _error(
            client.patch(f"/api/notifications/{nid}/", headers={**me, "Content-Type": "application/json"}, content=raw),
            400,
        )
    assert client.get(f"/api/notifications/{nid}/", headers=me).json() == before


CONTROL = "a\x01b\x07c\x1bd\x7fe\x85f\u2028g"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"recipients": [CONTROL]}, "recipients[0]"),
        ({"recipients": ["ok", "tab\there"]}, "recipients[1]"),
        ({"recipients": ["\u00a0"]}, "recipients[0]"),
        ({"recipients": ["\u202eevil"]}, "recipients[0]"),  # a right-to-left override is not printable
        ({"title": CONTROL * 30}, "title"),  # over 200 characters
        ({"type": "x" * 65}, "type"),
        ({"priority": "high\x00"}, "priority"),
    ],
)
def test_control_characters_where_they_cannot_go(
    client: TestClient, service: dict[str, str], redis_url: str, prefix: str, change: dict[str, object], field: str
) -> None:
    _error(client.post(SCHEDULE, headers=service, json={**schedule_body([1]), **change}), 422, field)
    assert _nothing_written(redis_url, prefix)


@pytest.mark.parametrize(
    ("change", "field", "where"),
    [
        ({"title": "Meet\x00ing"}, "title", "title"),
        ({"message": "\x00"}, "message", "message"),
        ({"type": "system\x00"}, "type", "type"),
        ({"data": {"k": "v\x00"}}, "data", "data['k']"),
        ({"data": {"k\x00": "v"}}, "data", "the key 'k\\x00' in data"),
        ({"data": {"a": [1, {"b": "\x00"}]}}, "data", "data['a'][1]['b']"),
    ],
)
def test_nul_characters_are_refused(
    client: TestClient,
    service: dict[str, str],
    redis_url: str,
    prefix: str,
    change: dict[str, object],
    field: str,
    where: str,
) -> None:
    """Like Django REST Framework's CharField: a NUL is refused wherever text goes, naming where it was."""
    body = _error(client.post(SCHEDULE, headers=service, json={**schedule_body([1]), **change}), 422, field)
    assert f"{where} must not contain NUL characters" in str(body["detail"]), body
    assert _nothing_written(redis_url, prefix)


LUA = "]]..redis.call('FLUSHALL')..[["


def test_unicode_and_lua_looking_text_are_stored_verbatim(
    client: TestClient, service: dict[str, str], redis_url: str, prefix: str
) -> None:
    """Text is data: it reaches Lua only through ARGV, so nothing in it is ever run; it comes back exact."""
    r = redis.Redis.from_url(redis_url)
    r.set(f"{prefix}:canary", "still here")
    body = schedule_body(
        [LUA, "😀", "ﷺ"],
        title=f"{LUA} 😀 \u202e ǅ",
        message=f"{CONTROL}\n{LUA}",
        type=LUA[:64],
        data={LUA: [LUA, "\x01", "\ud7ff"], "nested": {"k": LUA}},
    )
    created = client.post(SCHEDULE, headers={**service, "Idempotency-Key": LUA}, json=body)
    assert created.status_code == 201, created.text
    for nid, who in zip(created.json()["notification_ids"], body["recipients"], strict=True):  # type: ignore
        n = client.get(f"/api/notifications/{nid}/", headers=service).json()
        assert (n["recipient"], n["title"], n["message"], n["type"], n["data"]) == (
            who,
            body["title"],
            body["message"],
            body["type"],
            body["data"],
        )
    assert r.get(f"{prefix}:canary") == b"still here"
    r.close()


@pytest.mark.parametrize("value", [b"k\r\nX-Injected: 1", b"k\nSet-Cookie: a=b", b"k\r", b"k\x00", b"k\x7f"])
def test_header_injection_in_idempotency_key(
    client: TestClient, service: dict[str, str], redis_url: str, prefix: str, value: bytes
) -> None:
    headers = [
        (b"authorization", service["Authorization"].encode()),
        (b"content-type", b"application/json"),
        (b"idempotency-key", value),
    ]
    r = client.post(SCHEDULE, headers=headers, content=json.dumps(schedule_body([1])).encode())
    _error(r, 422, "Idempotency-Key")
    assert "x-injected" not in r.headers and "set-cookie" not in r.headers
    assert _nothing_written(redis_url, prefix)
