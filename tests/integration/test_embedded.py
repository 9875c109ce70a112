"""The embedded server: a fixed port survives a SIGKILL and restart; a dead port is noticed fast; a password
guards it; concurrent starts start one server; the last user to leave stops it; ``zsched redis-cli`` gets in.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis

from chaos.harness import free_port
from zsched._valkey import answers as _answers
from zsched.cli import rediscli
from zsched.embedded import EmbeddedServer


def test_a_dead_port_is_probed_once_not_retried_for_seconds() -> None:
    # redis-py 6+ retries a refused connection with backoff by default; start() after a crash (a stale
    # port file) used to wait ~4 s on that before starting the new server
    started = time.monotonic()
    assert _answers(free_port()) is False
    assert time.monotonic() - started < 1.5


def test_killed_server_restarts_on_the_same_port_with_its_data(tmp_path: Path) -> None:
    server = EmbeddedServer(tmp_path, persistent=True, port=free_port()).start()
    try:
        url = server.url
        r = redis.Redis.from_url(url)
        r.set("kept", "yes")
        server.kill()
        assert not _answers(server.requested_port)
        assert (tmp_path / "port").exists(), "a SIGKILLed server leaves its port file behind"
        server.start()
        assert server.url == url
        assert r.get("kept") == b"yes"
        r.close()
    finally:
        server.stop()


def _servers_in(data_dir: Path) -> list[int]:
    """Live valkey-server processes working in ``data_dir`` (valkey chdirs into its --dir)."""
    if not Path("/proc/self/cwd").exists():
        pytest.skip("counting servers reads /proc")
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if (
                proc.name.isdigit()
                and (proc / "comm").read_text().startswith("valkey")
                and (proc / "cwd").resolve() == data_dir.resolve()
            ):
                found.append(int(proc.name))
        except OSError:
            continue  # gone meanwhile, a zombie, or not ours to read
    return found


def _noauth_reply(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"PING\r\n")
        return s.recv(200)


def test_a_password_is_required_and_kept_private(tmp_path: Path) -> None:
    data = tmp_path / "zs"
    with EmbeddedServer(data, persistent=False) as server:
        assert _noauth_reply(server.port).startswith(b"-NOAUTH")
        password = (data / "password").read_text().strip()
        assert len(password) >= 32 and server.password == password
        assert stat.S_IMODE((data / "password").stat().st_mode) == 0o600
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        assert server.url == f"redis://:{password}@127.0.0.1:{server.port}/0"
        assert password not in server.address
        assert redis.Redis.from_url(server.url).ping()
        cmdline = Path(f"/proc/{server._process.pid if server._process else 0}/cmdline")
        if cmdline.exists():  # given on stdin, so ps never shows it
            assert password.encode() not in cmdline.read_bytes()
    with EmbeddedServer(data, persistent=False) as again:  # the next start keeps it: clients' URLs stay valid
        assert again.password == password


def test_servers_starting_at_once_start_one_valkey(tmp_path: Path) -> None:
    data = tmp_path / "zs"
    servers = [EmbeddedServer(data, persistent=False) for _ in range(4)]
    gate = threading.Barrier(len(servers))

    def start(server: EmbeddedServer) -> None:
        gate.wait()
        server.start()

    threads = [threading.Thread(target=start, args=(s,)) for s in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    try:
        assert len({s.port for s in servers}) == 1 and servers[0].port
        assert sum(s.owned for s in servers) == 1
        assert len(_servers_in(data)) == 1
    finally:
        for s in servers:
            s.stop()
    assert _servers_in(data) == []


ATTACH = """
import sys
from zsched.embedded import EmbeddedServer
server = EmbeddedServer(sys.argv[1], persistent=False).start()
print(server.port, server.owned, flush=True)
sys.stdin.readline()
server.stop()
"""


def _other_process(data: Path) -> tuple[subprocess.Popen[str], int, bool]:
    """A second Python process using the server on ``data``: its port and whether it started the server."""
    child = subprocess.Popen(
        [sys.executable, "-c", ATTACH, str(data)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    port, owned = child.stdout.readline().split()
    return child, int(port), owned == "True"


def test_the_server_stops_when_its_last_user_leaves_not_its_starter(tmp_path: Path) -> None:
    data = tmp_path / "zs"
    first, port, owned = _other_process(data)  # A: starts the server
    assert owned
    try:
        b = EmbeddedServer(data, persistent=False).start()  # B: attaches
        assert b.port == port and not b.owned
        first.communicate("stop\n", timeout=30)  # A leaves, B still uses it
        assert first.returncode == 0
        assert redis.Redis.from_url(b.url).ping()
        assert (data / "port").exists()
        b.stop()  # the last user stops a server it did not start
        assert not _answers(port, b.password)
        assert _servers_in(data) == []
        assert not (data / "port").exists() and not (data / "pid").exists()
    finally:
        if first.poll() is None:
            first.kill()


def test_a_crashed_user_does_not_keep_the_server_alive(tmp_path: Path) -> None:
    data = tmp_path / "zs"
    a = EmbeddedServer(data, persistent=False).start()
    crashed, port, owned = _other_process(data)
    assert port == a.port and not owned
    crashed.kill()  # SIGKILL: its flock goes with it
    crashed.communicate(timeout=30)  # reaps it and closes its pipes
    b = EmbeddedServer(data, persistent=False).start()
    b.stop()  # not the last: a still uses it
    assert _answers(a.port, a.password)
    a.stop()
    assert not _answers(a.port, a.password)
    assert _servers_in(data) == []


def test_zsched_redis_cli_passes_port_and_password(tmp_path: Path) -> None:
    cli = rediscli.find_cli()
    if cli is None:
        pytest.skip("neither redis-cli nor valkey-cli is installed")
    data = tmp_path / "zs"
    with EmbeddedServer(data, persistent=False) as server:  # attached to, and left running for us
        done = subprocess.run(
            [sys.executable, "-m", "zsched.cli", "redis-cli", "--data-dir", str(data), "PING"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "ZSCHED_REDIS_URL": ""},
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "PONG", f"{cli}: {done.stdout!r} {done.stderr!r}"
        assert server.password not in done.stdout + done.stderr
        assert _answers(server.port, server.password)
    flags, env = rediscli.cli_command(server.url)
    assert server.password not in " ".join(flags) and env == {"REDISCLI_AUTH": server.password}
