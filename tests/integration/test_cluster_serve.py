"""`zsched serve`, its worker and gateway, and the CLI on a real Redis Cluster (three masters with replicas).

The serve process is given the URL of one master and finds the cluster itself (``INFO cluster``); its six
partitions spread over the three masters. The HTTP API schedules, reads and cancels, the worker delivers,
a WebSocket client gets its notification through the gateway's sharded pub/sub, and a blip on the gateway's
connection to one master closes no socket: those on it join again and catch up from their inboxes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import redis

from tests.clusterutil import SLOT_RANGES, LocalCluster
from tests.integration.http_support import free_port, future, wait_until_answers
from tests.integration.wsutil import open_socket, receive, until_ready, wait_for
from zsched import Scheduler
from zsched.engine.keys import Keyspace
from zsched.models import Delivered, json_encoder
from zsched.settings import Settings

pytestmark = pytest.mark.cluster

ZSCHED = [sys.executable, "-m", "zsched.cli"]
PARTITIONS = 6


class Served:
    def __init__(self, base: str, env: dict[str, str], prefix: str) -> None:
        self.base, self.env, self.prefix = base, env, prefix

    def cli(self, *args: str, status: int = 0, **env: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*ZSCHED, *args], capture_output=True, text=True, timeout=60, check=False, env={**self.env, **env}
        )
        assert done.returncode == status, (done.returncode, done.stdout, done.stderr)
        return done

    def token(self, user: str, *scope: str) -> str:
        return self.cli("token", "create", "--user", user, *scope).stdout.strip().splitlines()[-1]


@pytest.fixture
def served(redis_cluster: LocalCluster, repo_root: Path, tmp_path: Path) -> Iterator[Served]:
    prefix = f"zc-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "ZSCHED_REDIS_URL": redis_cluster.url,
        "ZSCHED_PREFIX": prefix,
        "ZSCHED_PARTITIONS": str(PARTITIONS),
        "ZSCHED_RATE_PER_S": "1000",
        "ZSCHED_RATE_BURST": "1000",
    }
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [*ZSCHED, "serve", "--port", str(port)],
            cwd=repo_root,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_answers(process, f"{base}/healthz", log)
            yield Served(base, env, prefix)
        finally:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    text = log.read_text()
    assert process.returncode in (0, -signal.SIGTERM), text
    assert "worker stopped" in text and "Traceback" not in text, text
    cluster = redis.RedisCluster(host="127.0.0.1", port=redis_cluster.masters[0])
    for key in list(cluster.scan_iter(match=f"{prefix}:*", count=1000, target_nodes=cluster.PRIMARIES)):
        cluster.unlink(key)
    cluster.close()


def _master_of(keys: Keyspace, user: str) -> int:
    """Which master (0, 1, 2) owns the slot of the user's partition."""
    slot = keys.for_recipient(user).slot
    return next(i for i, (first, last) in enumerate(SLOT_RANGES) if first <= slot <= last)


def test_http_worker_cli_and_websocket_on_a_cluster(served: Served, redis_cluster: LocalCluster) -> None:
    ops = {"Authorization": f"Token {served.token('ops', '--scope', 'schedule:any')}"}
    alice = served.token("alice")

    r = httpx.post(
        f"{served.base}/api/notifications/schedule/",
        headers=ops,
        json={
            "recipients": [f"u{i}" for i in range(12)],
            "title": "Meeting",
            "message": "later",
            "scheduled_at": future(),
        },
    )
    assert r.status_code == 201 and r.json()["count"] == 12, r.text
    first, *rest = r.json()["notification_ids"]
    r = httpx.get(f"{served.base}/api/notifications/{first}/schedule_status/", headers=ops)
    assert r.status_code == 200 and r.json()["scheduled_status"] == "pending", r.text
    r = httpx.delete(f"{served.base}/api/notifications/{first}/cancel_scheduled/", headers=ops)
    assert r.status_code == 200 and r.json()["scheduled_status"] == "cancelled", r.text
    assert json.loads(served.cli("status", str(rest[0]), "--json").stdout)["scheduled_status"] == "pending"
    assert json.loads(served.cli("stats", "--json").stdout)["counts"]["pending"] == 11

    with open_socket(f"{served.base.replace('http', 'ws')}/ws?token={alice}") as ws:
        assert until_ready(ws) == []
        r = httpx.post(
            f"{served.base}/api/notifications/schedule/",
            headers={"Authorization": f"Bearer {alice}"},
            json={"recipients": ["alice"], "title": "Now", "message": "through the gateway", "scheduled_at": future(1)},
        )
        assert r.status_code == 201, r.text
        (nid,) = r.json()["notification_ids"]
        pushed = receive(ws, timeout_s=15)
        assert (pushed["type"], pushed["id"], pushed["title"]) == ("notification", nid, "Now")
    assert json.loads(served.cli("status", str(nid), "--json").stdout)["scheduled_status"] == "sent"

    # A worker on the cluster delivers what it claims (here to the inbox, read back by the status).
    late = served.cli("schedule", "--to", "bob", "--title", "CLI", "--message", "from the CLI", "--in", "1s", "--json")
    late_id = str(json.loads(late.stdout)["notification_ids"][0])
    wait_for(
        lambda: json.loads(served.cli("status", late_id, "--json").stdout)["scheduled_status"] == "sent",
        "the worker in zsched serve to deliver on the cluster",
        timeout_s=20,
    )

    cluster = redis.RedisCluster(host="127.0.0.1", port=redis_cluster.masters[0])
    assert cluster.hgetall(f"{served.prefix}:{{meta}}:layout") == {
        b"partitions": b"6",
        b"tags": b"spread",
        b"version": b"2",
    }
    cluster.close()
    # Told it is a single server, a command gets MOVED: one line on stderr, never a traceback.
    wrong = served.cli("stats", status=1, ZSCHED_REDIS_CLUSTER="no")
    assert wrong.stderr.startswith("zsched: error:") and "cluster" in wrong.stderr, wrong.stderr
    assert "Traceback" not in wrong.stderr and len(wrong.stderr.strip().splitlines()) == 1
    for env in ({"ZSCHED_REDIS_CLUSTER": "no"}, {"ZSCHED_PARTITION_TAGS": "plain"}):  # serve refuses in one line too
        refused = served.cli(
            "serve", "--port", str(free_port()), status=1 if env.get("ZSCHED_REDIS_CLUSTER") else 2, **env
        )
        assert "Traceback" not in refused.stderr and len(refused.stderr.strip().splitlines()) == 1, refused.stderr


def _published_nowhere(zs: Scheduler, user: str) -> int:
    """A notification appended to the user's inbox but published on a channel nobody hears, as if the gateway's
    connection had been down when it was published."""
    (nid,) = zs.schedule([user], "while down", "...", delay=3600).notification_ids
    body = json_encoder.encode(Delivered.of(zs.status(nid), datetime.now(UTC))).decode()
    p = zs.core.keys.for_recipient(user)
    zs.scripts["publish_inbox"](
        keys=[p.op(uuid.uuid4().hex), p.inbox(user)], args=[1000, 86_400_000, "", 60_000, "SPUBLISH", p.tag, body]
    )
    return nid


def test_a_blip_on_one_nodes_pubsub_closes_no_socket(served: Served, redis_cluster: LocalCluster) -> None:
    settings = Settings.of(redis_url=redis_cluster.url, prefix=served.prefix, partitions=PARTITIONS)
    users = [f"user{i}" for i in range(40)]
    by_master: dict[int, str] = {}
    for user in users:
        by_master.setdefault(_master_of(settings.core(cluster=True).keys, user), user)
    assert len(by_master) == 3, "the six partitions spread over all three masters"
    hit, spared = by_master[0], by_master[1]
    ws_base = served.base.replace("http", "ws")
    ops = {"Authorization": f"Token {served.token('ops', '--scope', 'schedule:any')}"}
    with (
        settings.scheduler() as zs,
        open_socket(f"{ws_base}/ws?token={served.token(hit)}") as ws_hit,
        open_socket(f"{ws_base}/ws?token={served.token(spared)}") as ws_spared,
    ):
        until_ready(ws_hit)
        until_ready(ws_spared)
        missed = _published_nowhere(zs, hit)
        node = redis.Redis(port=redis_cluster.masters[0])
        assert node.execute_command("CLIENT", "KILL", "TYPE", "pubsub") >= 1  # the gateway's link to master 0
        node.close()
        got = receive(ws_hit, timeout_s=15)  # the socket stays open: it joined again and caught up
        assert (got["type"], got["id"]) == ("notification", missed)
        for user, title in ((spared, "Still"), (hit, "Back")):
            r = httpx.post(
                f"{served.base}/api/notifications/schedule/",
                headers=ops,
                json={"recipients": [user], "title": title, "message": "live", "scheduled_at": future(0.5)},
            )
            assert r.status_code == 201, r.text
        assert receive(ws_spared, timeout_s=15)["title"] == "Still"
        assert receive(ws_hit, timeout_s=15)["title"] == "Back"  # live again, and `missed` was not sent twice
