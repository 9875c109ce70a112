"""GW, one gateway process at scale: a real ``zsched serve --no-worker`` (``bench.gateway_proc``) holds
``sockets`` WebSockets opened by a load generator in another process (``bench.gateway_load``, loopback only);
a real worker process (``bench.worker_proc``) delivers. Measured: the sockets held, the gateway's RSS growth per
idle socket, then two phases, each notification's lateness taken as its receive time minus its due time:

- burst: one notification per socket, all due at one instant (deliveries/s = count / time to the last one);
- sustained: ``rate`` a second spread evenly over ``seconds``, to the sockets in turn.

Gateway CPU time per delivery (user + system, from /proc) is the figure that carries to other machines."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from zsched.connection import queue_step
from zsched.models import ms_to_datetime
from zsched.web.auth import TokenStore

from .common import MESSAGE, TITLE, Context, Figure, recipients
from .s2_lateness import _schedule_spread, calls_needed, percentile
from .s3_end_to_end import free_port
from .workers import WorkerPool

SOCKETS = 10_000
RATE = 10_000
SECONDS = 5.0
KIB_PER_SOCKET = 20.0
P99_MS = 50.0
IDLE_S = 5.0
ROOT = Path(__file__).resolve().parent.parent


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _sleep_until(at_ms: int) -> None:
    time.sleep(max(0.0, at_ms / 1000 - time.time()))


@contextlib.contextmanager
def _process(args: list[str], **kw: object) -> Iterator[subprocess.Popen[str]]:
    """A child process for the duration; SIGTERM (then SIGKILL) to its own PID at the end."""
    proc = subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, text=True, **kw)  # type: ignore[call-overload]
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()


def _wait_ready(proc: subprocess.Popen[str], port: int, log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(
                f"the gateway did not start (exit {proc.poll()}); its log ends:\n{log.read_text()[-2000:]}"
            )
        with contextlib.suppress(OSError), urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
            if r.status == 200:
                return
        time.sleep(0.1)


class _Load:
    """The load generator process, one command line at a time."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.ask("")  # its "ready" line

    def ask(self, command: str) -> list[str]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        if command:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        line = self.proc.stdout.readline().split()
        if not line or line[0] == "error":
            raise RuntimeError(f"load generator answered {line!r} to {command!r} (exit {self.proc.poll()})")
        return line

    def quit(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("quit\n")
        self.proc.stdin.close()
        self.proc.wait(20)

    def collect(self, count: int, timeout_s: float, path: Path) -> list[tuple[int, float, float]]:
        self.ask(f"collect {count} {timeout_s} {path}")
        return [(int(n), float(got), float(due)) for n, got, due in json.loads(path.read_text())]


def _schedule_instant(ctx: Context, prefix: str, users: list[str], due_ms: int) -> list[int]:
    """One notification per user, all due at ``due_ms``: 500 recipients a call, pipelined."""
    zs = ctx.scheduler(prefix)
    ops = [
        zs.core.schedule(users[i : i + 500], TITLE, MESSAGE, at=ms_to_datetime(due_ms))
        for i in range(0, len(users), 500)
    ]
    pipe = zs.redis.pipeline(transaction=False)
    for op in ops:
        for step in next(op):
            queue_step(pipe, zs.scripts, step)
    ids: list[int] = []
    for op, reply in zip(ops, pipe.execute(), strict=True):
        try:
            op.send([reply])
        except StopIteration as done:
            ids += done.value.notification_ids
    zs.close()
    return ids


def _phase(rows: list[tuple[int, float, float]], ids: list[int], first_due_ms: float) -> dict[str, float]:
    expected = set(ids)
    seen: dict[int, float] = {}
    duplicated = 0
    for nid, received_ms, due_ms in rows:
        if nid not in expected:
            continue
        if nid in seen:
            duplicated += 1
            continue
        seen[nid] = received_ms - due_ms
    late = list(seen.values())
    last_ms = max((r for nid, r, _ in rows if nid in expected), default=first_due_ms)
    return {
        "expected": len(ids),
        "received": len(seen),
        "missing": len(expected) - len(seen),
        "duplicated": duplicated,
        "per_s": len(seen) / max((last_ms - first_due_ms) / 1000, 1e-3),
        "p50_ms": percentile(late, 50),
        "p99_ms": percentile(late, 99),
        "max_ms": max(late, default=float("nan")),
    }


@dataclass
class Result:
    """What one run measured: the sockets, the gateway's memory and idle CPU, and each phase's figures
    (``_phase``'s keys, plus ``cpu_ms_per_delivery``)."""

    wanted: int
    held: int = 0
    lost: int = 0
    open_s: float = 0.0
    rss_kib: int = 0
    kib_per_socket: float = 0.0
    idle_cpu_pct: float = 0.0
    rate: int = 0
    burst: dict[str, float] = field(default_factory=dict)
    sustained: dict[str, float] = field(default_factory=dict)


def run(ctx: Context, sockets: int, rate: int, seconds: float, workers: int = 1) -> Result:
    """Hold ``sockets``, then a burst of one notification each, then ``rate`` a second for ``seconds``."""
    prefix = ctx.prefix("gw")
    users = recipients(sockets)
    work = Path(tempfile.mkdtemp(prefix="zsched-bench-gw-"))
    r = ctx.redis()
    store = TokenStore(prefix)
    with r.pipeline(transaction=False) as pipe:
        tokens = [store.create(pipe, user)[0] for user in users]
        pipe.execute()
    r.close()
    (work / "tokens.tsv").write_text("".join(f"{u}\t{t}\n" for u, t in zip(users, tokens, strict=True)))
    port = free_port()
    log = work / "gateway.log"
    out = Result(sockets, rate=rate)
    gw_args = ["bench.gateway_proc", "--redis-url", ctx.url, "--prefix", prefix, "--port", str(port)]
    with log.open("w") as log_file, _process(gw_args, stdout=log_file, stderr=subprocess.STDOUT) as gateway:
        _wait_ready(gateway, port, log)
        load_args = ["bench.gateway_load", "--port", str(port), "--tokens", str(work / "tokens.tsv")]
        with (
            WorkerPool(ctx.url, prefix, count=workers),
            _process(load_args, stdin=subprocess.PIPE, stdout=subprocess.PIPE) as proc,
        ):
            load = _Load(proc)
            warm = min(200, max(1, sockets // 10))  # the first sockets also warm up code paths and pools
            load.ask(f"open {warm}")
            time.sleep(1.0)
            rss_warm = _rss_kib(gateway.pid)
            t0 = time.monotonic()
            out.held = int(load.ask(f"open {sockets}")[1])
            out.open_s = time.monotonic() - t0
            time.sleep(2.0)
            out.rss_kib = _rss_kib(gateway.pid)
            out.kib_per_socket = (out.rss_kib - rss_warm) / max(1, out.held - warm)
            cpu0 = _cpu_s(gateway.pid)
            time.sleep(IDLE_S)
            out.idle_cpu_pct = (_cpu_s(gateway.pid) - cpu0) / IDLE_S * 100

            due_ms = int(time.time() * 1000) + 1500 + sockets // 5
            ids = _schedule_instant(ctx, prefix, users, due_ms)
            _sleep_until(due_ms)  # CPU from the due time on: the wait before it is idle time (measured above)
            cpu0 = _cpu_s(gateway.pid)
            rows = load.collect(len(ids), max(due_ms / 1000 - time.time(), 0) + 30, work / "burst.json")
            out.burst = _phase(rows, ids, due_ms)
            out.burst["cpu_ms_per_delivery"] = (_cpu_s(gateway.pid) - cpu0) * 1000 / max(1, out.burst["received"])

            count = max(10, int(rate * seconds))
            first_ms = int(time.time() * 1000) + 1500 + calls_needed(rate, count) // 3
            ids = _schedule_spread(ctx, prefix, rate, count, first_ms, users)
            _sleep_until(first_ms)
            cpu0 = _cpu_s(gateway.pid)
            rows = load.collect(len(ids), max(first_ms / 1000 - time.time(), 0) + seconds + 30, work / "sus.json")
            sus = out.sustained = _phase(rows, ids, first_ms)
            sus["cpu_ms_per_delivery"] = (_cpu_s(gateway.pid) - cpu0) * 1000 / max(1, sus["received"])
            out.lost = int(load.ask("collect 0 0 /dev/null")[3])
            load.quit()
    ctx.drop(prefix)
    return out


def figures(got: Result) -> list[Figure]:
    """The table's rows for one run."""
    burst, sus = got.burst, got.sustained

    def counts(p: dict[str, float]) -> str:
        return (
            f"{p['received']:,.0f}/{p['expected']:,.0f} received, {p['missing']:.0f} missing, {p['duplicated']:.0f} dup"
        )

    return [
        Figure(
            "GW",
            "sockets held",
            got.held,
            "sockets",
            target=got.wanted,
            target_text=f">= {got.wanted:,}",
            note=f"opened in {got.open_s:.1f} s; {got.lost} dropped by the server",
        ),
        Figure(
            "GW",
            "RSS growth per idle socket",
            got.kib_per_socket,
            "KiB",
            higher_is_better=False,
            target=KIB_PER_SOCKET,
            target_text=f"<= {KIB_PER_SOCKET:g} KiB",
            note=f"gateway RSS {got.rss_kib / 1024:.0f} MiB with {got.held:,} sockets; "
            f"{got.idle_cpu_pct:.0f} % of a CPU while idle",
        ),
        Figure(
            "GW",
            f"burst: {got.held:,} due at one instant",
            burst["per_s"],
            "deliveries/s",
            note=f"p50 {burst['p50_ms']:.0f} ms, p99 {burst['p99_ms']:.0f} ms; {counts(burst)}",
            extra=burst,
        ),
        Figure(
            "GW",
            f"sustained {got.rate:,}/s: deliveries/s",
            sus["per_s"],
            "deliveries/s",
            target=got.rate * 0.97,
            target_text=f">= {got.rate:,}/s",
            note=counts(sus),
            extra=sus,
        ),
        Figure(
            "GW",
            f"sustained {got.rate:,}/s: p99 from due",
            sus["p99_ms"],
            "ms",
            higher_is_better=False,
            target=P99_MS,
            target_text=f"<= {P99_MS:g} ms",
            note=f"p50 {sus['p50_ms']:.1f} ms, max {sus['max_ms']:.0f} ms",
        ),
        Figure(
            "GW",
            "gateway CPU per delivery",
            sus["cpu_ms_per_delivery"] * 1000,
            "us",
            higher_is_better=False,
            note=f"sustained phase; burst {burst['cpu_ms_per_delivery'] * 1000:.0f} us; "
            f"{os.cpu_count()} CPUs, {_cpu_model()}",
        ),
    ]


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"


def measure(ctx: Context) -> list[Figure]:
    """10,000 sockets (scaled), a burst of one notification each, then 10,000/s for 5 s (scaled), or the rate and
    seconds of ``--sustain``."""
    sockets = ctx.size(SOCKETS, least=20)
    rate, seconds = ctx.sustain or (ctx.size(RATE, least=100), max(1.0, SECONDS * min(1.0, ctx.scale)))
    return figures(run(ctx, sockets, rate, seconds))
