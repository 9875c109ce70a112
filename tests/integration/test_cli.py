"""The ``zsched`` command as a user runs it: real processes, a real server."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

from zsched.settings import FIELDS, env_name

ZSCHED = [sys.executable, "-m", "zsched.cli"]


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ZSCHED, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={**os.environ, "ZSCHED_REDIS_URL": ""},
    )


def test_help_teaches() -> None:
    out = _run("--help").stdout
    assert "zsched schedule --to alice" in out and "embedded valkey-server" in out
    assert "--in" in _run("schedule", "--help").stdout


def test_scheduled_two_seconds_ahead_is_sent_on_time(redis_url: str, prefix: str, tmp_path: Path) -> None:
    target = ["--redis-url", redis_url, "--prefix", prefix]
    worker = subprocess.Popen([*ZSCHED, "worker", *target], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        scheduled = _run(
            "schedule", *target, "--to", "alice", "--title", "Hello", "--message", "first", "--in", "2s", "--json"
        )
        assert scheduled.returncode == 0, scheduled.stderr
        (nid,) = json.loads(scheduled.stdout)["notification_ids"]
        deadline = time.monotonic() + 15
        while True:
            status = json.loads(_run("status", *target, str(nid), "--json").stdout)
            if status["scheduled_status"] == "sent" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert status["scheduled_status"] == "sent"
        assert status["sent_at"] >= status["scheduled_at"]
        # what redis-cli HGET shows
        raw = redis.Redis.from_url(redis_url).hget(f"{prefix}:{{p0}}:state", nid)
        assert raw is not None and json.loads(raw)["status"] == "sent"
        human = _run("status", *target, str(nid)).stdout
        assert "scheduled_status: sent" in human
    finally:
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=20)
    assert worker.returncode == 0, output
    assert f"sent notification {nid} to alice" in output and "received SIGTERM" in output


def test_errors_are_clear_usage_exits_2_not_found_1(redis_url: str, prefix: str) -> None:
    target = ["--redis-url", redis_url, "--prefix", prefix]
    past = _run("schedule", *target, "--to", "a", "--title", "t", "--message", "m", "--at", "2020-01-01T00:00:00Z")
    assert past.returncode == 2 and "must be in the future; got 2020-01-01T00:00:00" in past.stderr
    missing = _run("cancel", *target, "424242")
    assert missing.returncode == 1 and "no notification with id 424242" in missing.stderr  # runtime, not usage
    bad = _run("schedule", *target, "--to", "a", "--title", "t", "--message", "m", "--in", "soon")
    assert bad.returncode == 2 and "write e.g. 500ms" in bad.stderr


def test_embedded_server_by_default_keeps_data_between_commands(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path / "zs")]
    scheduled = _run("schedule", *data, "--to", "bo", "--title", "Kept", "--message", "on disk", "--in", "1h", "--json")
    assert scheduled.returncode == 0, scheduled.stderr
    (nid,) = json.loads(scheduled.stdout)["notification_ids"]
    status = _run("status", *data, str(nid), "--json")  # a new server process replays the AOF
    assert json.loads(status.stdout)["scheduled_status"] == "pending"
    stats = json.loads(_run("stats", *data, "--json").stdout)
    assert stats["counts"]["pending"] == 1
    assert not (tmp_path / "zs" / "port").exists(), "a server started for one command is stopped after it"


def test_recipients_from_a_file_in_calls_of_ten_thousand(redis_url: str, prefix: str, tmp_path: Path) -> None:
    people = tmp_path / "people.txt"
    people.write_text("".join(f"user{i}\n" for i in range(12_345)) + "\nuser7\n")  # blank line, duplicate
    target = ["--redis-url", redis_url, "--prefix", prefix]
    args = [
        "schedule",
        *target,
        "--to-file",
        str(people),
        "--title",
        "All hands",
        "--message",
        "10:00",
        "--in",
        "1h",
        "--idempotency-key",
        "all-hands",
        "--json",
    ]
    first = _run(*args)
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout)
    assert result["count"] == 12_345 and len(set(result["notification_ids"])) == 12_345
    again = json.loads(_run(*args).stdout)  # a re-run after a failure creates nothing new
    assert again["notification_ids"] == result["notification_ids"] and again["replayed"]
    stats = json.loads(_run("stats", *target, "--json").stdout)
    assert stats["counts"]["pending"] == 12_345
    none = _run("schedule", *target, "--title", "t", "--message", "m", "--in", "1s")
    assert none.returncode == 2 and "give recipients with --to" in none.stderr


def test_config_lists_every_setting_and_hides_secrets() -> None:
    env = {**os.environ, "ZSCHED_LEASE_MS": "5s", "ZSCHED_WEBHOOK_SECRET": "topsecret"}
    env["ZSCHED_REDIS_URL"] = "redis://:hunter2@127.0.0.1:1/0"
    out = subprocess.run([*ZSCHED, "config"], capture_output=True, text=True, env=env, check=True).stdout
    assert re.search(r"^worker +ZSCHED_LEASE_MS +5s  \(default 30s\)$", out, re.M), out
    assert "topsecret" not in out and "hunter2" not in out and "redis://:***@127.0.0.1:1/0" in out
    assert len(out.splitlines()) == len(FIELDS)
    data = json.loads(subprocess.run([*ZSCHED, "config", "--json"], capture_output=True, text=True, env=env).stdout)
    assert set(data) == {env_name(name) for name in FIELDS} and data["ZSCHED_BATCH"] == {
        "value": "100",
        "default": "100",
    }


def test_version_has_one_source() -> None:
    import importlib.metadata

    import zsched

    out = subprocess.run([*ZSCHED, "--version"], capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"zsched {zsched.__version__}" == f"zsched {importlib.metadata.version('zsched')}"


def test_a_redis_password_is_never_printed_at_start() -> None:
    url = "redis://:hunter2@127.0.0.1:1/0"  # nothing listens: the worker announces itself, then waits it out
    proc = subprocess.Popen(
        [*ZSCHED, "worker", "--redis-url", url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        assert proc.stdout is not None
        rest = proc.stdout.read()
        proc.stdout.close()
    assert "zsched worker running on redis://:***@127.0.0.1:1/0" in first
    assert "hunter2" not in first + rest
