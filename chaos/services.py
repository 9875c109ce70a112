"""Processes and servers a fault family starts besides Redis: real ``zsched`` commands, and a slow webhook receiver.

Every process is started here and stopped by its PID; every server binds 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .harness import ROOT


class Zsched:
    """One ``python -m zsched <args>`` process, configured by ``ZSCHED_*`` variables, logging JSON lines to a file."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "zsched", *args],
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONPATH": str(ROOT), "ZSCHED_LOG_FORMAT": "json", **env},
            )

    def alive(self) -> bool:
        """Whether the process still runs."""
        return self.process.poll() is None

    def stop(self, timeout_s: float = 15.0) -> int:
        """SIGTERM (it finishes its batch in flight), SIGKILL if it does not stop in time; its exit status."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def records(self) -> list[dict[str, Any]]:
        """The JSON log records written so far (lines that are not JSON, such as the start banner, are skipped)."""
        out: list[dict[str, Any]] = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
        return out

    def tail(self, lines: int = 5) -> str:
        """The last lines of its log, for a problem report."""
        return " | ".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def logged_at(record: dict[str, Any]) -> float:
    """A JSON log record's time as a Unix timestamp."""
    return datetime.fromisoformat(str(record["time"])).timestamp()


class SlowHook:
    """A webhook receiver that takes ``answer_s`` to answer each POST with 200; records (arrival time, X-Zsched-Id)."""

    def __init__(self, answer_s: float) -> None:
        self.answer_s = answer_s
        self.posts: list[tuple[float, int]] = []
        self._lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                arrived = time.time()
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with hook._lock:
                    hook.posts.append(
                        (arrived, int(self.headers.get("webhook-id") or self.headers.get("X-Zsched-Id") or 0))
                    )
                time.sleep(hook.answer_s)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.socket.listen(128)  # http.server's backlog of 5 resets some of 32 concurrent connects
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> SlowHook:
        """Serve in a thread."""
        self._thread.start()
        return self

    def counts(self) -> Counter[int]:
        """POSTs received per notification id."""
        with self._lock:
            return Counter(nid for _, nid in self.posts)

    def first_post(self) -> dict[int, float]:
        """When each notification id was first POSTed (Unix time)."""
        with self._lock:
            out: dict[int, float] = {}
            for at, nid in self.posts:
                out.setdefault(nid, at)
            return out

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.httpd.shutdown()
        self.httpd.server_close()
