"""`zsched serve` as a real process on a loopback port: the seed's cURL flow with a CLI-made token."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.integration.http_support import free_port, future, wait_until_answers
from tests.integration.wsutil import open_socket, receive, until_ready, wait_for

ZSCHED = [sys.executable, "-m", "zsched.cli"]


def _cli(*args: str, common: list[str]) -> str:
    done = subprocess.run([*ZSCHED, *args, *common], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def serve(redis_url: str, prefix: str, repo_root: Path, tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    common = ["--redis-url", redis_url, "--prefix", prefix]
    port = free_port()
    log = tmp_path / "serve.log"
    output = log.open("w")
    process = subprocess.Popen(
        [*ZSCHED, "serve", "--port", str(port), *common],
        cwd=repo_root,
        stdout=output,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_answers(process, f"{base}/healthz", log)
        yield base, common
    finally:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        output.close()
    # uvicorn re-raises the signal it caught once shutdown is done; what matters is that shutdown ran
    assert process.returncode in (0, -signal.SIGTERM), log.read_text()
    text = log.read_text()
    assert "worker stopped" in text and "Application shutdown complete" in text, text


def test_seed_curl_flow_against_zsched_serve(serve: tuple[str, list[str]]) -> None:
    base, common = serve
    out = _cli("token", "create", "--user", "ops", "--scope", "schedule:any", common=common)
    token = out.strip().splitlines()[-1]
    assert token.startswith("zs_")
    listed = _cli("token", "list", common=common)
    assert "user=ops" in listed and token not in listed
    auth = {"Authorization": f"Token {token}"}

    r = httpx.post(
        f"{base}/api/notifications/schedule/",
        headers={**auth, "Content-Type": "application/json"},
        json={"recipients": [1, 2, 3], "title": "Meeting", "message": "In 30 minutes", "scheduled_at": future()},
    )
    assert r.status_code == 201 and r.json()["count"] == 3, r.text
    assert r.json()["notification_ids"][0] == 1  # so the seed's `/api/notifications/1/...` examples work verbatim
    r = httpx.get(f"{base}/api/notifications/1/schedule_status/", headers=auth)
    assert r.status_code == 200 and r.json()["scheduled_status"] == "pending"
    r = httpx.delete(f"{base}/api/notifications/1/cancel_scheduled/", headers=auth)
    assert r.status_code == 200 and r.json()["scheduled_status"] == "cancelled"

    r = httpx.post(
        f"{base}/api/notifications/schedule/",
        headers=auth,
        json={"recipients": [2], "title": "Soon", "message": "now", "scheduled_at": future(0.3)},
    )
    (soon,) = r.json()["notification_ids"]
    deadline = time.monotonic() + 15
    while httpx.get(f"{base}/api/notifications/{soon}/schedule_status/", headers=auth).json()["is_sent"] is False:
        assert time.monotonic() < deadline, "the worker in `zsched serve` did not deliver within 15 s"
        time.sleep(0.1)
    metrics = httpx.get(f"{base}/metrics").text
    assert "zsched_sent_total 1" in metrics and "zsched_cancelled_total 1" in metrics
    assert "zsched_delivery_lateness_seconds_count 1" in metrics

    token_id = listed.split()[0]
    assert _cli("token", "revoke", token_id, common=common).strip() == "revoked"
    assert httpx.get(f"{base}/api/notifications/", headers=auth).status_code == 401


def test_schedule_over_http_and_receive_over_websocket_from_zsched_serve(serve: tuple[str, list[str]]) -> None:
    base, common = serve
    token = _cli("token", "create", "--user", "alice", common=common).strip().splitlines()[-1]
    auth = {"Authorization": f"Bearer {token}"}
    ws_url = base.replace("http://", "ws://") + f"/ws?token={token}"
    with open_socket(ws_url) as ws:
        assert until_ready(ws) == []
        due = future(1.5)
        r = httpx.post(
            f"{base}/api/notifications/schedule/",
            headers=auth,
            json={
                "recipients": ["alice"],
                "title": "Stand-up",
                "message": "in 1.5 s",
                "scheduled_at": due,
                "priority": "high",
                "data": {"room": "B2"},
            },
        )
        assert r.status_code == 201, r.text
        (nid,) = r.json()["notification_ids"]
        pushed = receive(ws, timeout_s=15)
        arrived = datetime.now(UTC)
        assert (pushed["type"], pushed["id"], pushed["title"], pushed["priority"], pushed["data"]) == (
            "notification",
            nid,
            "Stand-up",
            "high",
            {"room": "B2"},
        )
        lateness_s = (arrived - datetime.fromisoformat(due.replace("Z", "+00:00"))).total_seconds()
        assert -0.05 < lateness_s < 5, f"arrived {lateness_s:.3f} s after due"  # generous: the bench measures
        assert pushed["stream_id"]
        ws.send(json.dumps({"type": "ack", "id": nid}))
        wait_for(
            lambda: (
                httpx.get(f"{base}/api/notifications/{nid}/schedule_status/", headers=auth).json()["delivered_at"]
                is not None
            ),
            "the ack to be recorded",
        )
    status = httpx.get(f"{base}/api/notifications/{nid}/schedule_status/", headers=auth).json()
    assert status["scheduled_status"] == "sent" and status["is_sent"]
