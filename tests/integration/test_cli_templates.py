"""``zsched template ...`` and ``zsched inbox ...`` as a user runs them: save from a file, list, show, preview,
schedule, delete refused while in use (a context that cannot render is a usage error, exit 2; a missing template a
runtime one, exit 1); an inbox shown with its unread count, marked read."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import tick
from tests.integration.test_cli import _run
from zsched import Keyspace, Scheduler

WELCOME = {
    "fallback_locale": "en",
    "variants": {
        "en": {"title": "Welcome, {{ name }}", "message": "Plan {{ plan }}", "html": "<b>{{ name }}</b>"},
        "fr": {"title": "Bienvenue, {{ name }}", "message": "Offre {{ plan }}"},
    },
}


def test_template_commands(redis_url: str, prefix: str, tmp_path: Path) -> None:
    target = ["--redis-url", redis_url, "--prefix", prefix]
    spec = tmp_path / "welcome.json"
    spec.write_text(json.dumps(WELCOME))
    saved = _run("template", "save", *target, "welcome", str(spec))
    assert saved.returncode == 0 and "saved template 'welcome' version 1" in saved.stdout, saved.stderr
    assert "version 2" in _run("template", "save", *target, "welcome", str(spec)).stdout
    listed = _run("template", "list", *target).stdout
    assert "welcome" in listed and "v2" in listed and "en, fr" in listed
    shown = json.loads(_run("template", "show", *target, "welcome", "--version", "1", "--json").stdout)
    assert shown["version"] == 1 and shown["variants"]["fr"]["title"] == "Bienvenue, {{ name }}"
    context = json.dumps({"name": "<Ana>", "plan": "pro"})
    preview = _run("template", "preview", *target, "welcome", "--context", context, "--locale", "fr-CA").stdout
    assert "locale:  fr" in preview and "title:   Bienvenue, <Ana>" in preview
    html = json.loads(_run("template", "preview", *target, "welcome", "--context", context, "--json").stdout)
    assert html["html"] == "<b>&lt;Ana&gt;</b>"
    bad = _run("template", "schedule", *target, "welcome", "--to", "a", "--context", '{"name": "A"}', "--in", "1h")
    assert bad.returncode == 2 and "'plan' is undefined" in bad.stderr
    done = _run(
        "template", "schedule", *target, "welcome", "--to", "a", "--to", "b", "--context", context, "--in", "1h"
    )
    assert done.returncode == 0 and "scheduled 2 notification(s) with 'welcome'" in done.stdout, done.stderr
    busy = _run("template", "delete", *target, "welcome")
    assert busy.returncode == 1 and "used by" in busy.stderr
    missing = _run("template", "show", *target, "nope")
    assert missing.returncode == 1 and "no template 'nope'" in missing.stderr
    assert "zsched template save welcome" in _run("template", "--help").stdout


def test_inbox_commands(redis_url: str, prefix: str) -> None:
    target = ["--redis-url", redis_url, "--prefix", prefix]
    with Scheduler.from_url(redis_url, keyspace=Keyspace(prefix)) as zs:
        ids = [zs.schedule(["bob"], f"n{i}", "m", delay=0).notification_ids[0] for i in range(3)]
    with Scheduler.from_url(redis_url, keyspace=Keyspace(prefix)) as zs:
        tick(zs)  # delivered to the inbox by a real worker round
    shown = _run("inbox", "show", *target, "bob")
    assert shown.returncode == 0 and "bob: 3 unread" in shown.stdout, shown.stderr
    read = _run("inbox", "read", *target, "bob", str(ids[0]), "424242")
    assert "bob: 1 of 2 read" in read.stdout and "2 unread" in read.stdout, read.stderr
    page = json.loads(_run("inbox", "show", *target, "bob", "--json").stdout)
    assert [i["read"] for i in page["items"]] == [False, False, True]
    assert "0 unread" in _run("inbox", "read-all", *target, "bob").stdout
