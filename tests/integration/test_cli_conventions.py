"""The ``zsched`` command's conventions: ``--json`` wherever it prints data; exit 0 done, 1 could not be done,
2 usage error; a runtime error is one line, never a traceback; ``--log-level``; ``ZSCHED_LOG_FORMAT=json``."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from zsched.cli.main import _parser

ZSCHED = [sys.executable, "-m", "zsched.cli"]
DOWN = ["--redis-url", "redis://127.0.0.1:1/0"]  # nothing listens on port 1
QUIET = {"serve", "worker", "redis-cli"}  # long-running, or another program's output: no data of their own


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ZSCHED, *args], capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})}, check=False
    )


Leaves = dict[tuple[str, ...], argparse.ArgumentParser]


def _leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Leaves:
    """Every runnable command (``('token', 'create')``, ...) and its parser."""
    found: Leaves = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found.update(_leaves(child, (*path, name)))
    return found or {path: parser}


def test_every_command_that_prints_data_takes_json() -> None:
    leaves = _leaves(_parser())
    assert ("token", "create") in leaves and ("dead", "retry") in leaves
    lacking = [
        " ".join(path)
        for path, parser in leaves.items()
        if path[0] not in QUIET | {"bench"} and "--json" not in {o for a in parser._actions for o in a.option_strings}
    ]
    assert lacking == []


@pytest.mark.parametrize(
    "command",
    [
        ["stats"],
        ["status", "1"],
        ["cancel", "1"],
        ["list", "alice"],
        ["schedule", "--to", "a", "--title", "t", "--message", "m", "--in", "1h"],
        ["dead", "list"],
        ["dead", "retry", "--all"],
        ["token", "create", "--user", "alice"],
        ["token", "list"],
        ["token", "revoke", "abcdef12"],
        ["contact", "show", "alice"],
        ["contact", "set", "alice", "--locale", "en"],
        ["contact", "erase", "alice"],
        ["template", "list"],
        ["template", "preview", "welcome"],
        ["inbox", "show", "alice"],
    ],
)
def test_redis_down_is_a_one_line_runtime_error(command: list[str]) -> None:
    done = _run(*command, *DOWN)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("zsched: error: "), done.stderr
    assert "127.0.0.1:1" in lines[0]


def test_not_found_is_1_and_usage_errors_are_2(redis_url: str, prefix: str) -> None:
    target = ["--redis-url", redis_url, "--prefix", prefix]
    missing = _run("status", "424242", *target)
    assert missing.returncode == 1 and "no notification with id 424242" in missing.stderr
    assert _run("cancel", "424242", *target).returncode == 1
    assert _run("stats", "--no-such-flag", *target).returncode == 2
    assert _run("schedule", "--to", "a", "--title", "t", "--message", "m", "--in", "soon", *target).returncode == 2
    assert _run("dead", "retry", *target).returncode == 2  # neither ids nor --all
    made = _run("token", "create", "--user", "alice", "--json", *target)
    assert made.returncode == 0, made.stderr
    record = json.loads(made.stdout)
    assert record["user"] == "alice" and record["token"]
    revoked = _run("token", "revoke", record["id"], "--json", *target)
    assert revoked.returncode == 0 and json.loads(revoked.stdout) == {"revoked": True}
    retried = _run("dead", "retry", "424242", "--json", *target)
    assert retried.returncode == 1 and json.loads(retried.stdout) == {"requeued": [], "missing": [424242]}


def test_worker_logs_json_lines_with_the_delivery_fields(redis_url: str, prefix: str) -> None:
    target = ["--redis-url", redis_url, "--prefix", prefix]
    worker = subprocess.Popen(
        [*ZSCHED, "worker", "--log-level", "debug", *target],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "ZSCHED_LOG_FORMAT": "json"},
    )
    try:
        scheduled = _run("schedule", "--to", "bob", "--title", "t", "--message", "m", "--in", "1s", "--json", *target)
        (nid,) = json.loads(scheduled.stdout)["notification_ids"]
        deadline = time.monotonic() + 15
        while json.loads(_run("status", str(nid), "--json", *target).stdout)["scheduled_status"] != "sent":
            assert time.monotonic() < deadline, "not sent within 15 s"
            time.sleep(0.2)
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=20)
    records = [json.loads(line) for line in err.splitlines()]  # every line is one JSON object
    assert any(r["level"] == "debug" for r in records), err  # --log-level debug took effect
    (sent,) = [r for r in records if r.get("notification_id") == nid]
    assert sent["recipient"] == "bob" and sent["attempt"] == 1 and sent["late_ms"] >= 0, sent
    assert sent["logger"] == "zsched.worker" and sent["message"].startswith(f"sent notification {nid}")


def test_serve_takes_a_log_level() -> None:
    assert "--log-level" in _run("serve", "--help").stdout
    assert _run("serve", "--log-level", "loud").returncode == 2
