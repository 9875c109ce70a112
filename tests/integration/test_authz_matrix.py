"""Who may do what: every endpoint and the WebSocket against eight kinds of caller, one table, every cell.

The notification under test is created by ``owner`` (a service token, user ``billing``) for ``recipient``
(``bob``). ``service`` is another service token (``crm``); ``stranger`` is a plain user (``mallory``).
A refused change leaves the notification exactly as it was.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from tests.helpers import tick
from tests.integration.http_support import TestClient, Tokens, future, schedule_body
from tests.integration.wsutil import GatewayServer, close_code, open_socket, receive, until_ready
from zsched import Scheduler
from zsched.settings import Settings
from zsched.web.app import create_app
from zsched.web.auth import SCOPE_SCHEDULE_ANY
from zsched.web.ratelimit import FailedAuthLimiter

CALLERS = ("anonymous", "wrong", "revoked", "owner", "recipient", "stranger", "service", "admin")
USERS = {"owner": "billing", "recipient": "bob", "stranger": "mallory", "service": "crm", "admin": "ops"}

N = "/api/notifications"
PUBLIC = (200,) * 8
WELCOME = {"fallback": {"locale": "en", "title": "Hi {{ name }}", "message": "m"}}
# endpoint -> expected status for each caller, in CALLERS order
MATRIX: dict[str, tuple[int, ...]] = {
    "POST schedule for yourself": (401, 401, 401, 201, 201, 201, 201, 201),
    "POST schedule for someone else": (401, 401, 401, 201, 403, 403, 201, 201),
    "GET list your own": (401, 401, 401, 200, 200, 200, 200, 200),
    "GET list ?recipient=bob": (401, 401, 401, 403, 200, 403, 403, 200),
    "GET list ?created_by=billing": (401, 401, 401, 200, 403, 403, 403, 200),
    "GET {id}": (401, 401, 401, 200, 200, 404, 404, 200),
    "GET {id}/schedule_status": (401, 401, 401, 200, 200, 404, 404, 200),
    "PATCH {id}": (401, 401, 401, 200, 200, 404, 404, 200),
    "DELETE {id}/cancel_scheduled": (401, 401, 401, 200, 200, 404, 404, 200),
    "DELETE {id}/scheduled": (401, 401, 401, 200, 200, 404, 404, 200),
    "GET batch": (401, 401, 401, 200, 200, 404, 404, 200),
    "PATCH batch": (401, 401, 401, 200, 200, 404, 404, 200),
    "DELETE batch": (401, 401, 401, 200, 200, 404, 404, 200),
    "PATCH {id}/content": (401, 401, 401, 200, 200, 404, 404, 200),
    "PATCH batch content": (401, 401, 401, 200, 200, 404, 404, 200),
    "GET stats": (401, 401, 401, 403, 403, 403, 403, 200),
    "GET pauses": (401, 401, 401, 403, 403, 403, 403, 200),
    "POST pause of a type": (401, 401, 401, 403, 403, 403, 403, 200),
    "POST resume": (401, 401, 401, 403, 403, 403, 403, 200),
    "GET contacts ?recipient=bob": (401, 401, 401, 403, 200, 403, 403, 200),
    "PATCH contacts ?recipient=bob": (401, 401, 401, 403, 200, 403, 403, 200),
    "POST erasure of bob": (401, 401, 401, 403, 200, 403, 403, 200),
    "GET me": (401, 401, 401, 200, 200, 200, 200, 200),
    "GET tables/upcoming": (401, 401, 401, 403, 403, 403, 403, 200),
    "GET processes": (401, 401, 401, 403, 403, 403, 403, 200),
    "GET throughput": (401, 401, 401, 403, 403, 403, 403, 200),
    "GET search ?title=Meeting": (401, 401, 401, 403, 403, 403, 403, 200),
    "POST dead/requeue": (401, 401, 401, 403, 403, 403, 403, 200),
    "GET recipient ?recipient=bob": (401, 401, 401, 403, 200, 403, 403, 200),
    "GET recipient (yourself)": (401, 401, 401, 200, 200, 200, 200, 200),
    "GET templates": (401, 401, 401, 200, 200, 200, 200, 200),
    "POST templates/welcome": (401, 401, 401, 403, 403, 403, 403, 201),
    "GET templates/welcome": (401, 401, 401, 200, 200, 200, 200, 200),
    "DELETE templates/welcome": (401, 401, 401, 403, 403, 403, 403, 200),
    "POST templates/welcome/preview": (401, 401, 401, 200, 200, 200, 200, 200),
    "POST templates/welcome/schedule for yourself": (401, 401, 401, 201, 201, 201, 201, 201),
    "GET inbox ?recipient=bob": (401, 401, 401, 403, 200, 403, 403, 200),
    "POST inbox/read ?recipient=bob": (401, 401, 401, 403, 200, 403, 403, 200),
    "POST inbox/read_all ?recipient=bob": (401, 401, 401, 403, 200, 403, 403, 200),
    "GET dashboard": PUBLIC,
    "GET dashboard.js": PUBLIC,
    "GET dashboard.css": PUBLIC,
    "POST recurring for yourself": (401, 401, 401, 201, 201, 201, 201, 201),
    "POST recurring for someone else": (401, 401, 401, 201, 403, 403, 201, 201),
    "GET recurring list your own": (401, 401, 401, 200, 200, 200, 200, 200),
    "GET recurring list ?created_by=billing": (401, 401, 401, 200, 403, 403, 403, 200),
    # a recurring schedule is its creator's: its recipients see the occurrences, not the schedule
    "GET recurring {id}": (401, 401, 401, 200, 404, 404, 404, 200),
    "DELETE recurring {id}": (401, 401, 401, 200, 404, 404, 404, 200),
    "POST recurring {id}/pause": (401, 401, 401, 200, 404, 404, 404, 200),
    "POST recurring {id}/resume": (401, 401, 401, 200, 404, 404, 404, 200),
    "GET recurring {id}/preview": (401, 401, 401, 200, 404, 404, 404, 200),
    "GET healthz": PUBLIC,
    "GET readyz": PUBLIC,
    "GET metrics": PUBLIC,
    "GET openapi.json": PUBLIC,
    "GET docs": PUBLIC,
}
# who sees notification N in their list with no filter: its recipient, and an admin (whose list is everything)
IN_OWN_LIST = {"recipient", "admin"}
# who sees it listing ?created_by=billing: its creator and an admin
IN_CREATED_LIST = {"owner", "admin"}
# who sees the recurring schedule in their list with no filter: its creator, and an admin
IN_OWN_RECURRING = {"owner", "admin"}
R = "/api/recurring"
WS_REFUSED = {"anonymous", "wrong", "revoked"}  # closed with 1008; everyone else gets their own stream only


def _request(endpoint: str, nid: int) -> tuple[str, str, dict[str, object] | None]:
    paths = {
        "POST schedule for yourself": f"{N}/schedule/",
        "POST schedule for someone else": f"{N}/schedule/",
        "GET list your own": f"{N}/",
        "GET list ?recipient=bob": f"{N}/?recipient=bob",
        "GET list ?created_by=billing": f"{N}/?created_by=billing",
        "GET {id}": f"{N}/{nid}/",
        "GET {id}/schedule_status": f"{N}/{nid}/schedule_status/",
        "PATCH {id}": f"{N}/{nid}/",
        "DELETE {id}/cancel_scheduled": f"{N}/{nid}/cancel_scheduled/",
        "DELETE {id}/scheduled": f"{N}/{nid}/scheduled/",
        "GET batch": f"/api/batches/{nid}x1/",
        "PATCH batch": f"/api/batches/{nid}x1/",
        "DELETE batch": f"/api/batches/{nid}x1/",
        "PATCH {id}/content": f"{N}/{nid}/content/",
        "PATCH batch content": f"/api/batches/{nid}x1/content/",
        "GET stats": "/api/stats",
        "GET pauses": "/api/pauses",
        "POST pause of a type": "/api/pause",
        "POST resume": "/api/resume",
        "GET contacts ?recipient=bob": "/api/contacts/?recipient=bob",
        "PATCH contacts ?recipient=bob": "/api/contacts/?recipient=bob",
        "POST erasure of bob": "/api/erasures/",
        "GET me": "/api/me",
        "GET tables/upcoming": "/api/tables/upcoming/",
        "GET processes": "/api/processes",
        "GET throughput": "/api/throughput",
        "GET search ?title=Meeting": "/api/search?title=Meeting",
        "POST dead/requeue": "/api/dead/requeue/",
        "GET recipient ?recipient=bob": "/api/recipient?recipient=bob",
        "GET recipient (yourself)": "/api/recipient",
        "GET templates": "/api/templates/",
        "POST templates/welcome": "/api/templates/welcome/",
        "GET templates/welcome": "/api/templates/welcome/",
        "DELETE templates/welcome": "/api/templates/welcome/",
        "POST templates/welcome/preview": "/api/templates/welcome/preview/",
        "POST templates/welcome/schedule for yourself": "/api/templates/welcome/schedule/",
        "GET inbox ?recipient=bob": "/api/inbox/?recipient=bob",
        "POST inbox/read ?recipient=bob": "/api/inbox/read/?recipient=bob",
        "POST inbox/read_all ?recipient=bob": "/api/inbox/read_all/?recipient=bob",
        "GET dashboard": "/dashboard",
        "GET dashboard.js": "/dashboard/dashboard.js",
        "GET dashboard.css": "/dashboard/dashboard.css",
        "POST recurring for yourself": R,
        "POST recurring for someone else": R,
        "GET recurring list your own": R,
        "GET recurring list ?created_by=billing": f"{R}?created_by=billing",
        "GET recurring {id}": f"{R}/{nid}",
        "DELETE recurring {id}": f"{R}/{nid}",
        "POST recurring {id}/pause": f"{R}/{nid}/pause",
        "POST recurring {id}/resume": f"{R}/{nid}/resume",
        "GET recurring {id}/preview": f"{R}/{nid}/preview",
        "GET healthz": "/healthz",
        "GET readyz": "/readyz",
        "GET metrics": "/metrics",
        "GET openapi.json": "/openapi.json",
        "GET docs": "/docs",
    }
    method = endpoint.split()[0]
    bodies: dict[str, dict[str, object]] = {
        "PATCH {id}": {"scheduled_at": future(7200)},
        "PATCH batch": {"scheduled_at": future(7200)},
        "PATCH {id}/content": {"title": "edited"},
        "PATCH batch content": {"title": "edited"},
        "PATCH contacts ?recipient=bob": {"locale": "en-GB"},
        "POST erasure of bob": {"recipient": "bob"},
        "POST templates/welcome": WELCOME,
        "POST templates/welcome/preview": {"context": {"name": "Bob"}},
        "POST inbox/read ?recipient=bob": {"ids": [nid]},
        "POST pause of a type": {"type": "matrix"},
        "POST resume": {"type": "matrix"},
    }
    return method, paths[endpoint], bodies.get(endpoint)


def _recurring_body(recipients: list[str]) -> dict[str, object]:
    return {"recipients": recipients, "title": "Digest", "message": "hourly", "every_s": 3600}


@pytest.fixture
def callers(redis_url: str, prefix: str, tokens: Tokens) -> dict[str, dict[str, str]]:
    revoked = tokens.headers("eve")
    assert tokens.store.revoke(tokens.redis, revoked["Authorization"].split()[1])
    return {
        "anonymous": {},
        "wrong": {"Authorization": "Token zs_" + "A" * 43},
        "revoked": revoked,
        "owner": tokens.headers("billing", scopes=(SCOPE_SCHEDULE_ANY,)),
        "recipient": tokens.headers("bob"),
        "stranger": tokens.headers("mallory"),
        "service": tokens.headers("crm", scopes=(SCOPE_SCHEDULE_ANY,)),
        "admin": tokens.headers("ops", admin=True),
    }


@pytest.fixture
def tokens(redis_url: str, prefix: str) -> Iterator[Tokens]:
    t = Tokens(redis_url, prefix)
    yield t
    t.redis.close()


@pytest.fixture
def client(redis_url: str, prefix: str) -> Iterator[TestClient]:
    settings = Settings.of(
        redis_url=redis_url, prefix=prefix, rate_per_s=1000.0, rate_burst=1000, auth_fail_burst=1000
    )  # the matrix fails on purpose many times from one address
    with TestClient(create_app(settings, run_worker=False)) as c:
        yield c


@pytest.mark.parametrize("endpoint", list(MATRIX))
def test_http_matrix(client: TestClient, callers: dict[str, dict[str, str]], endpoint: str) -> None:
    got: dict[str, int] = {}
    recurring = "recurring" in endpoint
    for caller in CALLERS:
        if recurring:  # the schedule under test, created by owner for recipient
            created = client.post(R, headers=callers["owner"], json=_recurring_body(["bob"]))
            nid, read = int(created.json()["id"]), f"{R}/{int(created.json()['id'])}"
        else:
            created = client.post(f"{N}/schedule/", headers=callers["owner"], json=schedule_body(["bob"]))
            nid = int(created.json()["notification_ids"][0])
            read = f"{N}/{nid}/"
        before = client.get(read, headers=callers["admin"]).json()
        method, path, body = _request(endpoint, nid)
        if endpoint == "POST dead/requeue":
            body = {"all": True}
        elif endpoint.startswith("POST templates/welcome/schedule"):
            body = {"recipients": [USERS.get(caller, "bob")], "scheduled_at": future(3600), "context": {"name": "B"}}
        elif endpoint.startswith("POST") and endpoint.endswith(("yourself", "someone else")):
            me = USERS.get(caller, "bob")
            people = [me] if endpoint.endswith("yourself") else [me, "carol"]
            body = _recurring_body(people) if recurring else schedule_body(people)
        if "templates/welcome" in endpoint:  # the template each caller finds (a DELETE by the last took it away)
            saved = client.post("/api/templates/welcome/", headers=callers["admin"], json=WELCOME)
            assert saved.status_code == 201, saved.text
        r = client.request(method, path, headers=callers[caller], json=body)
        got[caller] = r.status_code
        if r.status_code >= 400:
            assert r.headers["content-type"] == "application/json" and r.json()["detail"], (caller, r.text)
            after = client.get(read, headers=callers["admin"]).json()
            assert after == before, (caller, "a refused request changed it")
        if endpoint == "GET recurring list your own" and r.status_code == 200:
            listed = {s["id"] for s in r.json()["items"]}
            assert (nid in listed) == (caller in IN_OWN_RECURRING), caller
        if endpoint == "GET list your own" and r.status_code == 200:
            listed = {n["id"] for n in r.json()["items"]}
            assert (nid in listed) == (caller in IN_OWN_LIST), caller
        if endpoint == "GET list ?created_by=billing" and r.status_code == 200:
            listed = {n["id"] for n in r.json()["items"]}
            assert (nid in listed) == (caller in IN_CREATED_LIST), caller
        if endpoint == "GET recipient ?recipient=bob" and r.status_code == 200:
            assert nid in {n["id"] for n in r.json()["items"]} and r.json()["recipient"] == "bob", caller
        if r.status_code == 401:
            assert "Token" in r.headers["WWW-Authenticate"]
    assert got == dict(zip(CALLERS, MATRIX[endpoint], strict=True))


def test_every_api_route_is_in_the_matrix(client: TestClient) -> None:
    """A new endpoint cannot slip in without a row: the OpenAPI paths are exactly the matrix's."""
    documented = {(m.upper(), p) for p, ops in client.get("/openapi.json").json()["paths"].items() for m in ops}
    covered = {
        (
            _request(e, 0)[0],
            re.sub(
                r"/0(?=/|$)",
                "/{id}",
                _request(e, 0)[1]
                .split("?")[0]
                .replace("/upcoming/", "/{table}/")
                .replace("/0x1/", "/{batch_id}/")
                .replace("/welcome/", "/{name}/"),
            ),
        )
        for e in MATRIX
    }
    assert documented - {("GET", "/ws")} == covered


@pytest.fixture
def gw(redis_url: str, prefix: str) -> Iterator[GatewayServer]:
    server = GatewayServer(redis_url, prefix, heartbeat_s=60).start()
    yield server
    server.stop()


def test_websocket_matrix(gw: GatewayServer, callers: dict[str, dict[str, str]], zs: Scheduler) -> None:
    """Refused callers are closed with 1008; each admitted one receives its own notifications and no one
    else's (two rounds are delivered to every user, so a leaked message would arrive before the second)."""
    sockets = {}
    with ExitStack() as stack:
        for caller in CALLERS:
            token = callers[caller].get("Authorization", "").partition(" ")[2] or None
            ws = stack.enter_context(open_socket(gw.url(token)))
            if caller in WS_REFUSED:
                assert close_code(ws) == 1008, caller
                continue
            sockets[caller] = ws
            assert until_ready(ws) == [], caller
        rounds: dict[str, list[int]] = {caller: [] for caller in sockets}
        for _ in range(2):
            for caller in sockets:
                (nid,) = zs.schedule([USERS[caller]], "for you", "...", delay=0).notification_ids
                rounds[caller].append(nid)
            tick(zs)
        for caller, ws in sockets.items():
            got = [receive(ws), receive(ws)]
            assert [m["id"] for m in got] == rounds[caller], caller
            assert {m["recipient"] for m in got} == {USERS[caller]}


def test_token_guessing_is_slowed_per_address(redis_url: str, prefix: str, tokens: Tokens) -> None:
    """After ``auth_fail_burst`` bad tokens an address gets 429 (Retry-After) for every further bad one, in
    every API process; a right token from that address still passes (one guesser behind a NAT must not lock
    out its neighbours); a missing header is not a guess; another address is not affected."""
    settings = Settings.of(
        redis_url=redis_url, prefix=prefix, rate_per_s=1000.0, rate_burst=1000, auth_fail_per_s=0.01, auth_fail_burst=3
    )
    good = tokens.headers("alice")
    with TestClient(create_app(settings, run_worker=False), client=("203.0.113.7", 4000)) as guesser:
        for _ in range(5):
            assert guesser.get(f"{N}/").status_code == 401  # no token at all: not counted
        codes = [guesser.get(f"{N}/", headers={"Authorization": f"Token zs_guess{i}"}).status_code for i in range(4)]
        assert codes == [401, 401, 401, 429]
    with TestClient(create_app(settings, run_worker=False), client=("203.0.113.7", 4001)) as guesser:
        r = guesser.get(f"{N}/", headers={"Authorization": "Token zs_guess9"})  # the count lives in Redis
        assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 100
        assert "too many failed authentications" in r.json()["detail"]
        assert guesser.get(f"{N}/", headers=good).status_code == 200  # its neighbour with a right token
    with TestClient(create_app(settings, run_worker=False), client=("198.51.100.2", 4000)) as other:
        assert other.get(f"{N}/", headers=good).status_code == 200


def test_websocket_token_guessing_is_slowed(redis_url: str, prefix: str, tokens: Tokens) -> None:
    gw = GatewayServer(redis_url, prefix, heartbeat_s=60)
    gw.gateway.failures = FailedAuthLimiter(gw.gateway.redis, prefix, rate_per_s=0.01, burst=2)
    gw.start()
    try:
        good = tokens.headers("alice")["Authorization"].split()[1]
        with open_socket(gw.url(good)) as ws:  # the positive control: before the guesses this token is let in
            assert until_ready(ws) == []
        for guess in ("zs_guess1", "zs_guess2"):
            with open_socket(gw.url(guess)) as ws:
                assert (close_code(ws), ws.close_reason) == (1008, "invalid, expired or revoked token")
        with open_socket(gw.url("zs_guess3")) as ws:  # out of failures: the next guess says so
            assert close_code(ws) == 1008
            assert ws.close_reason.startswith("too many failed authentications; retry in "), ws.close_reason
        with open_socket(gw.url(good)) as ws:  # a right token from the same address still gets in
            assert until_ready(ws) == []
    finally:
        gw.stop()
