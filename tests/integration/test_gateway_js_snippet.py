"""The web page snippet of docs/websocket.md, run as it is in Node (its WebSocket is the browser's API): it shows
and acks a notification, retries with growing, jittered delays while the gateway is gone, each time with
``since`` (the last notification it showed), and never retries a 1008."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import tick
from tests.integration.wsutil import GatewayServer, user_token, wait_for
from zsched import Scheduler
from zsched.web.auth import TokenStore

NODE = shutil.which("node")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(NODE is None, reason="no node on PATH to run the page's JavaScript")]
DOCS = Path(__file__).resolve().parents[2] / "docs" / "websocket.md"

# What a browser provides, and a log of what the page does, one JSON line each: every connect, every shown
# notification. The page's own code follows, verbatim from the docs (wss:// becomes ws:// on loopback).
BROWSER = """
const log = (what) => console.log(JSON.stringify({ ...what, t: Date.now() }));
const store = new Map();
globalThis.localStorage = { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, String(v)) };
globalThis.location = { host: process.argv[2] };
const TOKEN = process.argv[3];
globalThis.Notification = class { constructor(title) { log({ shown: title }); } };
const Browser = globalThis.WebSocket;
globalThis.WebSocket = class extends Browser {
  constructor(url) { super(url.replace("wss://", "ws://")); log({ connect: url });
    let closed = false;
    this.addEventListener("close", (e) => { closed = true; log({ closed: e.code }); });
    this.addEventListener("error", () => setTimeout(() => { if (closed) return;  // a browser closes (1006) a
      const e = new Event("close"); Object.defineProperty(e, "code", { value: 1006 }); this.dispatchEvent(e); }));
  }                                                                          // failed connect; Node 20 only errs
};
"""


def page_script() -> str:
    found = re.search(r"```html\n<script>\n(.*?)</script>\n```", DOCS.read_text(), re.S)
    assert found, "docs/websocket.md has no page snippet"
    return BROWSER + found.group(1)


class Page:
    """The page running in Node; ``events`` are its log lines as they come."""

    def __init__(self, host: str, token: str, tmp_path: Path) -> None:
        script = tmp_path / "page.mjs"
        script.write_text(page_script())
        self.process = subprocess.Popen(
            [str(NODE), "--experimental-websocket", "--no-warnings", str(script), host, token],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.events: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.events.append(json.loads(line))

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if kind in e]

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(10)
        self._reader.join(10)
        assert self.process.stdout is not None
        self.process.stdout.close()


@pytest.fixture
def gateway(redis_url: str, prefix: str) -> Iterator[GatewayServer]:
    server = GatewayServer(redis_url, prefix).start()
    yield server
    server.stop()


def test_the_page_shows_acks_and_retries_with_growing_jittered_delays_and_since(
    redis_url: str, prefix: str, zs: Scheduler, gateway: GatewayServer, tmp_path: Path
) -> None:
    page = Page(f"127.0.0.1:{gateway.port}", user_token(redis_url, prefix, "erin"), tmp_path)
    try:
        wait_for(lambda: gateway.gateway.subscriptions == 1, "the page's socket to be live", timeout_s=15)
        (nid,) = zs.schedule(["erin"], "Hello", "from the page test", delay=0).notification_ids
        tick(zs)
        wait_for(lambda: page.of("shown"), "the page to show the notification", timeout_s=15)
        wait_for(lambda: zs.status(nid).delivered_at is not None, "the page's ack")
        gateway.stop()  # 1001 to the page, then nothing listens: every retry fails
        wait_for(lambda: len(page.of("connect")) >= 5, "four retries", timeout_s=20)
        connects = page.of("connect")[1:5]
        gaps = [b["t"] / 1000 - a["t"] / 1000 for a, b in itertools.pairwise(connects)]
        for gap, ceiling in zip(gaps, [1.0, 2.0, 4.0], strict=True):  # after the 2nd, 3rd, 4th failure in a row
            assert gap >= ceiling / 2 * 0.9, f"retries too soon: {gaps}"  # not a fixed one-second loop
            assert gap <= ceiling + 2, f"retries too late: {gaps}"  # generous: a busy machine adds, never takes
        assert all("&since=" in c["connect"] for c in connects), connects  # resumes after what it showed
    finally:
        page.stop()


def test_the_page_does_not_retry_a_1008(
    redis_url: str, prefix: str, gateway: GatewayServer, zs: Scheduler, tmp_path: Path
) -> None:
    token = user_token(redis_url, prefix, "finn")
    page = Page(f"127.0.0.1:{gateway.port}", token, tmp_path)
    try:
        wait_for(lambda: gateway.gateway.subscriptions == 1, "the page's socket to be live", timeout_s=15)
        assert TokenStore(prefix).revoke(zs.redis, token)
        wait_for(lambda: [e["closed"] for e in page.of("closed")] == [1008], "the 1008", timeout_s=10)
        time.sleep(1.5)  # three times the first retry's longest delay
        assert len(page.of("connect")) == 1, "a 1008 is not retried"
    finally:
        page.stop()
