"""Fuzz the HTTP API from its own OpenAPI document with schemathesis: no 5xx, every response as documented.

Each operation gets schema-valid (positive) and schema-violating (negative) cases, sent in-process to the ASGI
app with no token, a user token, a service token or an admin token. Every default schemathesis check runs:
no server error, status code / content type / headers / body as documented, invalid data rejected, valid
data accepted (except at /ws, see below), authentication enforced (it re-sends authenticated requests
without a token and with a bad one).

Rules JSON Schema cannot state are taught to the generator instead of loosening a check: ``scheduled_at``
must be in the future (valid cases get a future time), ``expires_at`` after it (valid cases get a minute
later), ``late_after_s`` only with ``on_late`` skip (valid cases drop it otherwise), ``deliver_at_local``
instead of ``scheduled_at`` and on a ``local_date`` still ahead everywhere (valid cases get one two days on or
more, and no ``local_date`` without it), ``digest_window_s`` and ``digest_max`` only with a ``digest_key`` (and
with one, no ``on_late`` skip: valid cases drop them), quiet hours that end where they start (dropped), and a
``recipient-id`` is
printable (no Unicode format or unassigned characters), so valid cases draw recipient ids from printable
categories only.
"""

from __future__ import annotations

import os
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import hypothesis
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from schemathesis.checks import positive_data_acceptance
from schemathesis.generation.modes import GenerationMode
from schemathesis.python.asgi import get_client, shutdown_lifespans

from tests.integration.http_support import Tokens, schedule_body, tokens
from zsched.settings import Settings
from zsched.web.app import create_app

__all__ = ["tokens"]

CASES_PER_OPERATION = int(os.environ.get("ZSCHED_FUZZ_CASES", "20"))
"""Per operation and mode; ``make test`` keeps the default, a longer run sets ZSCHED_FUZZ_CASES=500."""

PRINTABLE = st.characters(categories=["L", "M", "N", "P", "S"])  # every printable category but spaces
schemathesis.openapi.format("recipient-id", st.text(PRINTABLE, min_size=1, max_size=128))
# A recurring schedule's rule and zone: JSON Schema cannot say which strings cronsim and zoneinfo take. Each rule
# fires at least once a day, so an end a day or more after the start always leaves an occurrence.
schemathesis.openapi.format("cron", st.sampled_from(["*/5 * * * *", "0 9 * * *", "30 2 * * *", "0,30 * * * *"]))
schemathesis.openapi.format("iana-zone", st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"]))


def _future(case: Any, seconds: int) -> None:
    if isinstance(case.body, dict) and case.body.get("deliver_at_local") is not None:
        day = (datetime.now(UTC) + timedelta(days=2, seconds=seconds)).date()
        case.body = {**case.body, "local_date": day.isoformat()}
        for field in ("scheduled_at", "expires_at"):
            case.body.pop(field, None)
        if case.body.get("on_late", "send") != "skip":
            case.body.pop("late_after_s", None)
    elif isinstance(case.body, dict) and "local_date" in case.body:
        case.body = {k: v for k, v in case.body.items() if k != "local_date"}
    if isinstance(case.body, dict) and case.body.get("scheduled_at") is not None:
        at = datetime.now(UTC) + timedelta(seconds=seconds)
        case.body = {**case.body, "scheduled_at": at.isoformat().replace("+00:00", "Z")}
        if case.body.get("expires_at") is not None:
            case.body["expires_at"] = (at + timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
        if case.body.get("on_late", "send") != "skip":
            case.body.pop("late_after_s", None)
    if isinstance(case.body, dict) and case.body.get("digest_key") is None:  # a digest's options need its key
        for field in ("digest_window_s", "digest_max"):
            case.body.pop(field, None)
    elif isinstance(case.body, dict) and case.body.get("on_late") == "skip":  # a digest's wait is not lateness
        case.body.pop("on_late")
        case.body.pop("late_after_s", None)
    hours = case.body.get("quiet_hours") if isinstance(case.body, dict) else None
    if isinstance(hours, str) and hours[:5] == hours[-5:]:  # quiet hours that start as they end are no span
        case.body.pop("quiet_hours")
    if isinstance(case.body, dict) and {"start_at", "end_at"} & set(case.body):  # a recurring schedule's bounds
        start = datetime.now(UTC) + timedelta(seconds=min(seconds, 5 * 365 * 86400))
        bounds = {"start_at": start, "end_at": start + timedelta(days=731)}  # longer than the longest interval
        case.body = {**case.body, **{k: v.isoformat() for k, v in bounds.items() if k in case.body}}


def _fuzz(operation: Any, mode: GenerationMode, callers: dict[str, dict[str, str]], ran: Counter[str]) -> None:
    @hypothesis.given(
        case=operation.as_strategy(mode), who=st.sampled_from(sorted(callers)), ahead_s=st.integers(60, 9 * 365 * 86400)
    )
    @hypothesis.settings(
        max_examples=CASES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: Any, who: str, ahead_s: int) -> None:
        if mode is GenerationMode.POSITIVE:
            _future(case, ahead_s)
        ran[mode.value] += 1
        if "Authorization" not in (case.headers or {}):  # the invalid part is the missing token: keep it so
            who = "anonymous"
        case.call_and_validate(headers=callers[who] or None, excluded_checks=excluded)

    # /ws is a WebSocket handshake, which no plain HTTP request can be: every HTTP call must get the
    # documented 426, so "a valid request is accepted" cannot hold there (the gateway tests cover /ws).
    excluded = [positive_data_acceptance] if operation.path == "/ws" else []

    try:
        fuzz()
    except hypothesis.errors.Unsatisfiable:
        assert mode is GenerationMode.NEGATIVE, operation.label  # nothing to violate: no parameters, no body


def test_fuzz_the_api_from_its_openapi_document(redis_url: str, prefix: str, tokens: Tokens) -> None:
    settings = Settings.of(
        redis_url=redis_url, prefix=prefix, rate_per_s=1e6, rate_burst=1_000_000, auth_fail_burst=1_000_000
    )  # made-up tokens must not lock the real ones out
    app = create_app(settings, run_worker=False)
    callers: dict[str, dict[str, str]] = {
        "anonymous": {},  # schemathesis sends a made-up Authorization value: must be 401
        "user": tokens.headers("alice"),
        "service": tokens.service("billing"),
        "admin": tokens.headers("ops", admin=True),
    }
    ran: Counter[str] = Counter()
    try:
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        with get_client(app) as http:  # ids 1..6 exist, so small generated ids reach the 200 paths
            for _ in range(3):
                r = http.post(
                    "/api/notifications/schedule/", headers=callers["service"], json=schedule_body(["alice", "bob"])
                )
                assert r.status_code == 201, r.text
        for result in schema.get_all_operations():
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                _fuzz(result.ok(), mode, callers, ran)
    finally:
        shutdown_lifespans()
    print(f"schemathesis: {sum(ran.values())} cases ({ran['positive']} valid, {ran['negative']} invalid)")
    assert ran["positive"] >= 10 * CASES_PER_OPERATION and ran["negative"] >= 5 * CASES_PER_OPERATION
