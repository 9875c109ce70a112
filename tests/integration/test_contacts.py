"""Contact data and erasure on a real server: the library (sync and async), the HTTP API and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers import tick
from tests.integration.http_support import TestClient, Tokens, client, settings, tokens  # noqa: F401
from zsched import AsyncScheduler, Scheduler
from zsched.errors import FieldError, RecipientsError
from zsched.web.auth import SCOPE_CONTACTS_WRITE, SCOPE_SCHEDULE_ANY

NO_PREFERENCES = {"zone": None, "quiet_hours": None, "opt_outs": {}}  # the preference fields beside the contact data

ZSCHED = [sys.executable, "-m", "zsched.cli"]


def test_fields_are_set_kept_and_removed(zs: Scheduler) -> None:
    assert zs.contact("alice").email is None
    c = zs.set_contact("alice", email="alice@example.com", phone="+14155550123")
    assert (c.recipient, c.email, c.phone, c.locale) == ("alice", "alice@example.com", "+14155550123", None)
    c = zs.set_contact("alice", locale="pt-BR", phone=None)  # email kept, phone removed
    assert (c.email, c.phone, c.locale) == ("alice@example.com", None, "pt-BR")
    assert zs.contact("alice") == c
    assert zs.set_contact("alice") == c  # no field: only reads
    zs.set_contact("alice", email=None, locale=None)
    home = zs.core.keys.for_recipient("alice").contacts
    assert zs.redis.hexists(home, "alice") == 0  # nothing left: no entry at all
    assert zs.set_contact(7, email="seven@example.com").recipient == "7"  # ids are strings, as when scheduling


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("phone", "0044123", "E.164"),
        ("phone", "+0123", "E.164"),
        ("phone", "+1234567890123456", "E.164"),
        ("phone", "+1 415 555", "E.164"),
        ("email", "no-at-sign", "name@example.com"),
        ("email", "two@@example.com", "name@example.com"),
        ("email", "a@b.com\r\nBcc: x@y.com", "name@example.com"),
        ("email", "a.@example.com", "name@example.com"),
        ("email", "ünï@example.com", "ASCII"),
        ("email", "x" * 250 + "@a.io", "1 to 254"),
        ("locale", "english_UK", "BCP 47"),
        ("locale", "e", "BCP 47"),
        ("email", 5, "must be a string"),
    ],
)
def test_bad_values_are_refused_and_write_nothing(zs: Scheduler, field: str, value: object, says: str) -> None:
    zs.set_contact("bob", email="bob@example.com", phone="+447700900123", locale="en-GB")
    before = zs.contact("bob")
    with pytest.raises(FieldError, match=says) as refused:
        zs.set_contact("bob", **{"locale": "de", field: value})  # type: ignore[arg-type]
    assert refused.value.field == field
    assert zs.contact("bob") == before


def test_a_bad_recipient_is_refused(zs: Scheduler) -> None:
    with pytest.raises(RecipientsError):
        zs.set_contact("has space", email="a@example.com")


def test_erasure_removes_the_contact_and_the_inbox_and_nothing_else(zs: Scheduler) -> None:
    zs.set_contact("carol", email="carol@example.com")
    zs.set_contact("dave", email="dave@example.com")
    ids = zs.schedule(["carol", "dave"], "Hi", "there", delay=0).notification_ids
    tick(zs)
    p = zs.core.keys.for_recipient("carol")
    assert zs.redis.xlen(p.inbox("carol")) == 1
    erased = zs.erase_recipient("carol")
    assert (erased.recipient, erased.contact_removed, erased.inbox_entries_removed) == ("carol", True, 1)
    assert zs.redis.exists(p.inbox("carol")) == 0 and zs.contact("carol").email is None
    assert zs.contact("dave").email == "dave@example.com" and zs.redis.xlen(p.inbox("dave")) == 1
    assert [zs.status(i).scheduled_status for i in ids] == ["sent", "sent"]  # records stay until retention
    again = zs.erase_recipient("carol")
    assert (again.contact_removed, again.inbox_entries_removed) == (False, 0)


def test_a_resent_erasure_answers_its_first_outcome(zs: Scheduler) -> None:
    zs.set_contact("erin", phone="+14155550100")
    op = zs.core.erase_recipient("erin")
    (step,) = next(op)
    first = zs.scripts["erase_recipient"](keys=step.keys, args=step.args)
    resent = zs.scripts["erase_recipient"](keys=step.keys, args=step.args)  # its reply was lost: sent again
    assert first == resent == [1, 0]


async def test_the_async_library_does_the_same(azs: AsyncScheduler) -> None:
    c = await azs.set_contact("frank", email="frank@example.com", locale="fr")
    assert (await azs.contact("frank")) == c and c.locale == "fr"
    assert (await azs.set_contact("frank", locale=None)).locale is None
    erased = await azs.erase_recipient("frank")
    assert erased.contact_removed and (await azs.contact("frank")).email is None


def test_http_own_contact_patch_get_and_erase(client: TestClient, tokens: Tokens) -> None:  # noqa: F811
    alice = tokens.headers("alice")
    r = client.get("/api/contacts/", headers=alice)
    assert r.status_code == 200 and r.json() == {
        "recipient": "alice",
        "email": None,
        "phone": None,
        "locale": None,
        **NO_PREFERENCES,
    }
    r = client.patch("/api/contacts/", headers=alice, json={"email": "alice@example.com", "locale": "en-GB"})
    assert r.status_code == 200 and r.json()["email"] == "alice@example.com"
    r = client.patch("/api/contacts/", headers=alice, json={"locale": None, "phone": "+14155550123"})
    assert r.json() == {
        "recipient": "alice",
        "email": "alice@example.com",
        "phone": "+14155550123",
        "locale": None,
        **NO_PREFERENCES,
    }
    assert client.get("/api/contacts/?recipient=alice", headers=alice).json() == r.json()
    r = client.post("/api/erasures/", headers=alice, json={"recipient": "alice"})
    assert r.status_code == 200
    assert r.json() == {"recipient": "alice", "contact_removed": True, "inbox_entries_removed": 0}
    assert client.get("/api/contacts/", headers=alice).json()["email"] is None


def test_http_others_need_admin_or_contacts_write(client: TestClient, tokens: Tokens) -> None:  # noqa: F811
    writer = tokens.headers("crm", scopes=(SCOPE_CONTACTS_WRITE,))
    scheduler = tokens.headers("billing", scopes=(SCOPE_SCHEDULE_ANY,))
    r = client.patch("/api/contacts/?recipient=bob", headers=writer, json={"email": "bob@example.com"})
    assert r.status_code == 200 and r.json()["recipient"] == "bob"
    refused = client.patch("/api/contacts/?recipient=bob", headers=scheduler, json={"email": "evil@example.com"})
    assert refused.status_code == 403 and "contacts:write" in refused.json()["detail"]
    assert client.post("/api/erasures/", headers=scheduler, json={"recipient": "bob"}).status_code == 403
    assert client.get("/api/contacts/?recipient=bob", headers=writer).json()["email"] == "bob@example.com"
    r = client.post("/api/erasures/", headers=writer, json={"recipient": "bob"})
    assert r.status_code == 200 and r.json()["contact_removed"] is True


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"phone": "555-0100"}, "phone"),
        ({"email": "nobody"}, "email"),
        ({"locale": "en_GB"}, "locale"),
        ({"emial": "typo@example.com"}, None),
        ({"email": 5}, "email"),
    ],
)
def test_http_bad_fields_are_422_naming_them(
    client: TestClient,  # noqa: F811
    tokens: Tokens,  # noqa: F811
    body: dict[str, object],
    field: str | None,
) -> None:
    alice = tokens.headers("alice")
    client.patch("/api/contacts/", headers=alice, json={"email": "alice@example.com"})
    r = client.patch("/api/contacts/", headers=alice, json=body)
    assert r.status_code == 422, r.text
    if field is not None:
        assert r.json()["field"] == field
    else:
        assert "emial" in r.json()["detail"]
    assert client.get("/api/contacts/", headers=alice).json()["email"] == "alice@example.com"


def test_cli_sets_shows_and_erases(redis_url: str, prefix: str) -> None:
    target = ["--redis-url", redis_url, "--prefix", prefix]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*ZSCHED, *args, *target], capture_output=True, text=True, timeout=60, check=False)

    done = run("contact", "set", "gina", "--email", "gina@example.com", "--locale", "it", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "recipient": "gina",
        "email": "gina@example.com",
        "phone": None,
        "locale": "it",
        **NO_PREFERENCES,
    }
    assert run("contact", "set", "gina", "--locale", "", "--json").returncode == 0
    shown = run("contact", "show", "gina")
    assert "gina@example.com" in shown.stdout and "locale: -" in shown.stdout
    bad = run("contact", "set", "gina", "--phone", "12345")
    assert bad.returncode == 2 and bad.stderr.startswith("zsched: error: phone must be in E.164")
    erased = run("contact", "erase", "gina", "--json")
    assert json.loads(erased.stdout) == {"recipient": "gina", "contact_removed": True, "inbox_entries_removed": 0}
    assert json.loads(run("contact", "show", "gina", "--json").stdout)["email"] is None
