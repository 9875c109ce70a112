"""Templates over HTTP, as the README shows them: save versions (the fallback named apart), read, preview, schedule
with one (422 when the context cannot render, nothing written), delete refused with 409 while in use."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.http_support import TestClient, Tokens, future, tokens
from zsched.settings import Settings
from zsched.web.app import create_app
from zsched.web.auth import SCOPE_TEMPLATES_WRITE

__all__ = ["tokens"]

RENEWAL = {
    "fallback": {
        "locale": "en",
        "title": "Your {{ plan }} plan renews",
        "message": "On {{ day }}.",
        "html": "<p>Your <b>{{ plan }}</b> plan renews on {{ day }}.</p>",
    },
    "variants": {"fr": {"title": "Votre offre {{ plan }}", "message": "Renouvelée le {{ day }}."}},
}
CONTEXT = {"plan": "Pro", "day": "1 March"}


@pytest.fixture
def client(redis_url: str, prefix: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings.of(redis_url=redis_url, prefix=prefix), run_worker=False)) as c:
        yield c


def test_templates_over_http(client: TestClient, tokens: Tokens) -> None:
    writer, user = tokens.headers("cms", scopes=(SCOPE_TEMPLATES_WRITE,)), tokens.service("billing")
    saved = client.post("/api/templates/renewal/", headers=writer, json=RENEWAL)
    assert saved.status_code == 201, saved.text
    body = saved.json()
    assert (body["version"], body["fallback_locale"], sorted(body["variants"])) == (1, "en", ["en", "fr"])
    assert client.post("/api/templates/renewal/", headers=writer, json=RENEWAL).json()["version"] == 2
    assert [t["name"] for t in client.get("/api/templates/", headers=user).json()["items"]] == ["renewal"]
    assert client.get("/api/templates/renewal/?version=1", headers=user).json()["version"] == 1
    assert client.get("/api/templates/renewal/?version=9", headers=user).status_code == 404
    preview = client.post("/api/templates/renewal/preview/", headers=user, json={"context": CONTEXT, "locale": "fr"})
    assert preview.json() == {
        "locale": "fr",
        "title": "Votre offre Pro",
        "message": "Renouvelée le 1 March.",
        "html": None,
    }
    bad = client.post("/api/templates/renewal/preview/", headers=user, json={"context": {"plan": "Pro"}})
    assert bad.status_code == 422 and bad.json()["field"] == "context"
    broken = {"fallback": {"locale": "en", "title": "{{ plan", "message": "m"}}
    assert client.post("/api/templates/renewal/", headers=writer, json=broken).status_code == 422
    schedule = {"recipients": ["ana", "bob"], "scheduled_at": future(3600), "context": CONTEXT}
    missing = client.post("/api/templates/renewal/schedule/", headers=user, json={**schedule, "context": {}})
    assert missing.status_code == 422 and "undefined" in missing.json()["detail"]
    assert client.get("/api/notifications/?created_by=billing", headers=user).json()["items"] == []
    created = client.post("/api/templates/renewal/schedule/", headers=user, json={**schedule, "version": 1})
    assert created.status_code == 201, created.text
    (first, _) = created.json()["notification_ids"]
    view = client.get(f"/api/notifications/{first}/", headers=user).json()
    assert view["template"] == {"name": "renewal", "version": 1, "context": CONTEXT}
    assert view["title"] == "Your Pro plan renews"  # the preview, in the fallback locale
    busy = client.delete("/api/templates/renewal/", headers=writer)
    assert busy.status_code == 409 and busy.json()["error"] == "template_in_use" and busy.json()["pending"] == 2
    for nid in created.json()["notification_ids"]:
        assert client.delete(f"/api/notifications/{nid}/cancel_scheduled/", headers=user).status_code == 200
    gone = client.delete("/api/templates/renewal/", headers=writer)
    assert gone.json() == {"name": "renewal", "versions_deleted": 2}
    assert client.post("/api/templates/renewal/schedule/", headers=user, json=schedule).status_code == 404
