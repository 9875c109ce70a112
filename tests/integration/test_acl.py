"""The ACL user docs/deploy.md prints is enough: the library, the worker and the API run under it.

The user is made from the doc's exact ``ACL SETUSER`` line (its name, password and prefix swapped for unique
ones), on the test Redis and on the bundled valkey-server, and deleted afterwards.
"""

from __future__ import annotations

import secrets
import shlex
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
import redis

from tests.integration.http_support import free_port, wait_until_answers
from tests.integration.wsutil import open_socket, receive, until_ready
from zsched import Core, Keyspace, Scheduler

ROOT = Path(__file__).resolve().parents[2]


def doc_line() -> str:
    """The one ``ACL SETUSER`` line in docs/deploy.md."""
    (line,) = [x for x in (ROOT / "docs" / "deploy.md").read_text().splitlines() if x.startswith("ACL SETUSER ")]
    return line


@pytest.fixture
def acl_url(redis_url: str, prefix: str) -> Iterator[str]:
    """``redis_url`` as a fresh ACL user made from the doc's line, allowed only ``prefix``'s keys."""
    user, password = f"zsched-test-{uuid.uuid4().hex[:10]}", secrets.token_urlsafe(24)
    line = doc_line().replace("ACL SETUSER zsched ", f"ACL SETUSER {user} ", 1)
    line = line.replace(">CHANGE-ME", f">{password}").replace("zsched:*", f"{prefix}:*")
    admin = redis.Redis.from_url(redis_url)
    admin.execute_command(*shlex.split(line))
    try:
        parts = urlparse(redis_url)
        yield f"redis://{user}:{password}@{parts.hostname}:{parts.port}{parts.path or '/0'}"
    finally:
        admin.execute_command("ACL", "DELUSER", user)
        admin.close()


def test_the_doc_line_allows_no_other_key_nor_an_admin_command(acl_url: str) -> None:
    r = redis.Redis.from_url(acl_url)
    try:
        assert r.ping()
        with pytest.raises(redis.exceptions.NoPermissionError):
            r.set("not-zsched", 1)
        with pytest.raises(redis.exceptions.NoPermissionError):
            r.execute_command("FLUSHALL")  # refused: never sent as the default user
    finally:
        r.close()


def test_library_worker_and_api_run_as_the_acl_user(acl_url: str, prefix: str, tmp_path: Path) -> None:
    common = ["--redis-url", acl_url, "--prefix", prefix]
    zsched = [sys.executable, "-m", "zsched.cli"]
    made = subprocess.run(
        [*zsched, "token", "create", "--user", "alice", *common], capture_output=True, text=True, timeout=60
    )
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip().splitlines()[-1]
    port, log = free_port(), tmp_path / "serve.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [*zsched, "serve", "--port", str(port), *common], cwd=ROOT, stdout=output, stderr=subprocess.STDOUT
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_answers(process, f"{base}/readyz", log)
            with (
                open_socket(f"ws://127.0.0.1:{port}/ws?token={token}") as ws,
                Scheduler.from_url(acl_url, core=Core(Keyspace(prefix))) as zs,
            ):
                until_ready(ws)
                (nid,) = zs.schedule(["alice"], "As the ACL user", "hi", delay=timedelta(seconds=1)).notification_ids
                message = receive(ws, timeout_s=20)
                assert message["type"] == "notification" and message["id"] == nid, message
                later = zs.schedule(["alice"], "later", "m", at=datetime.now(UTC) + timedelta(hours=1))
                zs.reschedule(later.notification_ids[0], delay=timedelta(hours=2))
                zs.cancel(later.notification_ids[0])
                assert zs.stats().counts["sent"] >= 1 and zs.list_for("alice").items
            deadline = time.monotonic() + 15
            while True:
                status = httpx.get(
                    f"{base}/api/notifications/{nid}/schedule_status/", headers={"Authorization": f"Token {token}"}
                )
                assert status.status_code == 200, status.text
                if status.json()["scheduled_status"] == "sent" or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            assert status.json()["scheduled_status"] == "sent"
            assert httpx.get(f"{base}/api/notifications/", headers={"Authorization": f"Token {token}"}).is_success
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    text = log.read_text()
    assert "NOPERM" not in text and "No permissions" not in text, text
    assert "could not read maxmemory-policy" in text  # no CONFIG for this user: the start-up check says so
