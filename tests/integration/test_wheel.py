"""The wheel as a user installs it: built from this checkout, installed with no extras into a clean venv.

``pip install zsched`` must be enough to serve the API and the WebSocket gateway: the wheel carries the Lua
scripts, and its dependencies include everything uvicorn needs to accept a WebSocket. The venv is made twice:
once with the newest releases pip finds, once with every runtime dependency pinned to the floor pyproject.toml
declares, so the floors are versions that were run. pip keeps its downloads in its usual cache.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from packaging.requirements import Requirement

from tests.integration.http_support import free_port, wait_until_answers
from tests.integration.wsutil import open_socket, receive, until_ready

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _pip(python: Path, *args: str) -> None:
    done = subprocess.run(
        [str(python), "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def floors() -> list[str]:
    """``name==floor`` for every runtime dependency, from the ``>=`` bound pyproject.toml gives it."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = []
    for line in project["dependencies"]:
        requirement = Requirement(line)
        (low,) = [s.version for s in requirement.specifier if s.operator == ">="]
        pins.append(f"{requirement.name}=={low}")
    return pins


@pytest.fixture(scope="module", params=["newest", "floors"])
def venv(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the wheel built from this checkout, with no extras; its bin folder."""
    root = tmp_path_factory.mktemp(f"wheel-{request.param}")
    _pip(Path(sys.executable), "wheel", "--no-deps", "--quiet", "-w", str(root / "dist"), str(ROOT))
    (wheel,) = (root / "dist").glob("zsched-*.whl")
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True, timeout=120)
    python = root / "venv" / "bin" / "python"
    constraints = root / "constraints.txt"
    constraints.write_text("\n".join(floors() if request.param == "floors" else []) + "\n")
    _pip(python, "install", "--quiet", "-c", str(constraints), str(wheel))
    return python.parent


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZSCHED_", "PYTHON", "VIRTUAL_ENV"))}
    return env


@pytest.fixture
def served(venv: Path, redis_url: str, prefix: str, tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """``zsched serve`` from the venv on a free port; its base URL and the flags that reach its Redis."""
    common = ["--redis-url", redis_url, "--prefix", prefix]
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [str(venv / "zsched"), "serve", "--port", str(port), *common],
            cwd=tmp_path,  # nothing from the checkout on the path: only what the wheel installed
            env=_env(),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_answers(process, f"{base}/healthz", log)
            yield base, common
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_the_wheel_alone_serves_http_and_websocket(venv: Path, served: tuple[str, list[str]], tmp_path: Path) -> None:
    base, common = served
    where = subprocess.run(
        [str(venv / "python"), "-c", "import zsched, pathlib; print(pathlib.Path(zsched.__file__).parent)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_env(),
        check=True,
    ).stdout.strip()
    assert where.startswith(str(venv.parent)), where  # the installed copy, not this checkout
    assert (Path(where) / "lua" / "claim.lua").is_file()
    assert (Path(where) / "web" / "dashboard" / "static" / "dashboard.js").is_file()  # the page ships in the wheel
    page = httpx.get(f"{base}/dashboard", timeout=10)
    assert page.status_code == 200 and "dashboard/dashboard.js" in page.text, page.text[:200]
    assert "sessionStorage" in httpx.get(f"{base}/dashboard/dashboard.js", timeout=10).text
    made = subprocess.run(
        [str(venv / "zsched"), "token", "create", "--user", "alice", *common],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_env(),
        timeout=60,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip().splitlines()[-1]
    ws_url = base.replace("http://", "ws://") + f"/ws?token={token}"
    with open_socket(ws_url) as ws:
        assert until_ready(ws) == []
        due = datetime.now(UTC) + timedelta(seconds=1)
        answer = httpx.post(
            f"{base}/api/notifications/schedule/",
            headers={"Authorization": f"Token {token}"},
            json={"recipients": ["alice"], "title": "From the wheel", "message": "hi", "scheduled_at": due.isoformat()},
            timeout=10,
        )
        assert answer.status_code == 201, answer.text
        (nid,) = answer.json()["notification_ids"]
        message = receive(ws, timeout_s=20)
    assert message["type"] == "notification" and message["id"] == nid, json.dumps(message)
    assert message["title"] == "From the wheel"


def test_without_the_embedded_extra_every_command_says_how_to_fix_it(venv: Path, tmp_path: Path) -> None:
    for command in (["stats"], ["serve", "--port", str(free_port())], ["token", "list"]):
        done = subprocess.run(
            [str(venv / "zsched"), *command],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=_env(),
            timeout=60,
            check=False,
        )
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, (command, done.stderr)
        assert "pip install 'zsched[embedded]'" in lines[0] and "ZSCHED_REDIS_URL" in lines[0], lines[0]


def test_serve_without_a_websocket_library_stops_at_start(tmp_path: Path) -> None:
    # a package of each name that fails to import stands for its absence, as uvicorn's own check sees it
    for name in ("websockets", "wsproto"):
        (tmp_path / "shadow" / name).mkdir(parents=True)
        (tmp_path / "shadow" / name / "__init__.py").write_text(f"raise ImportError('no {name} here')\n")
    done = subprocess.run(
        [sys.executable, "-m", "zsched.cli", "serve", "--port", str(free_port()), "--redis-url", "redis://127.0.0.1:1"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**_env(), "PYTHONPATH": f"{tmp_path / 'shadow'}{os.pathsep}{ROOT}"},
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "WebSocket" in lines[0] and "websockets" in lines[0], done.stderr
