"""``zsched recurring ...`` against a real server: create, list, show, preview, pause, resume, delete."""

from __future__ import annotations

import json
import os
import subprocess
import sys

ZSCHED = [sys.executable, "-m", "zsched.cli"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ZSCHED, *args], capture_output=True, text=True, timeout=60, env=os.environ, check=False)


def test_the_recurring_commands(redis_url: str, prefix: str) -> None:
    target = ["--redis-url", redis_url, "--prefix", prefix]
    done = _run(
        "recurring", "create", *target, "--to", "alice", "--title", "Stand-up", "--message", "in 5",
        "--cron", "55 8 * * MON-FRI", "--timezone", "Europe/Berlin", "--max-count", "3", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    s = json.loads(done.stdout)
    assert (s["cron"], s["timezone"], s["status"], s["max_count"]) == ("55 8 * * MON-FRI", "Europe/Berlin", "active", 3)
    sid = str(s["id"])
    shown = _run("recurring", "show", sid, *target)
    assert shown.returncode == 0 and f"recurring schedule {sid}: active" in shown.stdout
    times = _run("recurring", "preview", sid, "--count", "5", *target).stdout.split()
    assert len(times) == 3, "max-count 3 bounds the preview"
    assert all(t.endswith(("+00:00",)) for t in times)
    listed = _run("recurring", "list", *target)
    assert sid in listed.stdout and "55 8 * * MON-FRI" in listed.stdout
    assert json.loads(_run("recurring", "pause", sid, "--json", *target).stdout)["status"] == "paused"
    (occurrence,) = s["occurrence_ids"]
    assert json.loads(_run("status", str(occurrence), "--json", *target).stdout)["scheduled_status"] == "cancelled"
    assert json.loads(_run("recurring", "resume", sid, "--json", *target).stdout)["status"] == "active"
    assert _run("recurring", "delete", sid, *target).returncode == 0
    gone = _run("recurring", "show", sid, *target)
    assert gone.returncode == 1 and f"no recurring schedule with id {sid}" in gone.stderr
    keyed = ["recurring", "create", *target, "--to", "bo", "--title", "t", "--message", "m", "--every", "1h"]
    once = _run(*keyed, "--idempotency-key", "nightly", "--json")
    twice = _run(*keyed, "--idempotency-key", "nightly", "--json")
    assert once.returncode == twice.returncode == 0 and json.loads(once.stdout)["id"] == json.loads(twice.stdout)["id"]
    assert json.loads(once.stdout)["every_s"] == 3600
    bad = _run("recurring", "create", *target, "--to", "a", "--title", "t", "--message", "m", "--cron", "* * *")
    assert bad.returncode == 2 and "cron must have 5 fields" in bad.stderr
    usage = _run("recurring", "create", *target, "--to", "a", "--title", "t", "--message", "m")
    assert usage.returncode == 2  # neither --cron nor --every


def test_help_teaches_the_rules() -> None:
    text = _run("recurring", "--help").stdout
    for phrase in ("--cron", "spring-forward", "fall-back", "--catch-up", "zsched recurring pause 1"):
        assert phrase in text, phrase
    assert "--timezone" in _run("recurring", "create", "--help").stdout
