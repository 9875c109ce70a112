"""Runs the scenarios, prints one table (figure, raw baseline, ratio, target, pass/short) and writes JSON."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from zsched.embedded import EmbeddedServer

from . import (
    gateway,
    r_recurring,
    s1_schedule,
    s2_lateness,
    s3_end_to_end,
    s4_claim,
    s5_memory,
    s6_growth,
    s7_purge,
    s8_email,
)
from .common import Context, Figure, server_info
from .shards import measure as measure_shards

SCENARIOS: dict[str, Callable[[Context], list[Figure]]] = {
    "s1": s1_schedule.measure,
    "s2": s2_lateness.measure,
    "s3": s3_end_to_end.measure,
    "s4": s4_claim.measure,
    "s5": s5_memory.measure,
    "s6": s6_growth.measure,
    "s8": s8_email.measure,
    "purge": s7_purge.measure,
    "recurring": r_recurring.measure,
    "gateway": gateway.measure,
    "shards": measure_shards,  # named only (OPT_IN): S1 and S4 on 1 shard vs a local 3-master cluster, ~1 min
}
OPT_IN = {"purge", "recurring", "gateway", "shards"}
"""Scenarios ``all`` leaves out, run only when named: S7 purge fills 1,000,000 records (about 2 minutes); R1 and R2
(recurring schedules: 100,000 schedules' memory, a burst of 10,000 occurrences) take about 40 s; the gateway holds
10,000 sockets in three processes (about 1 minute)."""
RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"


def machine() -> dict[str, Any]:
    """Where the figures came from: CPU model and count, memory, OS, Python."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model or platform.processor(),
        "memory_mb": mem_kb // 1024,
        "os": platform.platform(),
        "python": platform.python_version(),
        "load_avg_at_start": list(load),
    }


def commit() -> str:
    """The checkout's commit, with '-dirty' when there are uncommitted changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return ""
    if value != value:  # NaN
        return "n/a"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"
    return f"{text} {unit}".strip()


def _s3_baseline(figures: list[Figure]) -> str:
    """Says what S3's baseline column holds, for the line under the table."""
    s3 = [f for f in figures if f.scenario == "S3" and f.unit == "ms"]
    if not s3:
        return "S3 not run"
    if any(f.baseline is not None for f in s3):
        return "S3's raw baseline is S2's worker-only p99 from this run (no gateway, no sockets)"
    return "S3's raw baseline is blank: S2 did not run"


def table(figures: list[Figure]) -> str:
    """The figures as one plain-text (and Markdown) table."""
    head = ["scenario", "figure", "zsched", "raw baseline", "ratio", "target", "status", "note"]
    rows = [
        [
            f.scenario,
            f.name,
            _fmt(f.value, f.unit),
            _fmt(f.baseline, f.unit),
            "" if f.ratio is None else f"{f.ratio:.2f}",
            f.target_text,
            f.status,
            f.note,
        ]
        for f in figures
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows]
    return "\n".join([line, rule, *body])


def parser() -> argparse.ArgumentParser:
    """The flags ``make bench``, ``python -m bench`` and ``zsched bench`` share."""
    p = argparse.ArgumentParser(
        prog="zsched bench",
        description=(
            "Measure zsched against a raw-Redis baseline on the same server: S1 schedule throughput, "
            "S2 lateness, S3 end to end through zsched serve to WebSocket clients, S4 claim + deliver throughput, "
            "S5 memory per notification, S6 cost growth, S8 emails per second to a local SMTP server; by name only: "
            "purge (S7), recurring (R1 memory per schedule, R2 a burst of occurrences) and gateway (one gateway "
            "process holding 10,000 sockets)."
        ),
    )
    p.add_argument("names", nargs="*", metavar="scenario", help="scenarios to run, by name (same as --scenario)")
    p.add_argument(
        "--scenario",
        default="all",
        help=f"comma-separated subset of {','.join(SCENARIOS)} (default all: every one but {','.join(sorted(OPT_IN))})",
    )
    p.add_argument("--scale", type=float, default=1.0, help="multiply every size by this (default 1.0)")
    p.add_argument(
        "--sustain",
        metavar="RATE:SECONDS",
        help="gateway only: the sustained phase's rate and length instead of 10,000/s for 5 s (2000:30: a window "
        "long enough that a pause every few seconds cannot fall outside it)",
    )
    p.add_argument(
        "--redis-url",
        help="Redis to measure (default: start a private bundled valkey-server); "
        "only keys under zb-* prefixes are written, and deleted afterwards",
    )
    p.add_argument("--out", default=str(RESULTS), help=f"where to write the JSON (default {RESULTS})")
    p.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    return p


def _sustain(text: str | None) -> tuple[int, float] | None:
    """``--sustain RATE:SECONDS`` as numbers (None when not given)."""
    if text is None:
        return None
    rate, _, seconds = text.partition(":")
    try:
        parsed = int(rate), float(seconds)
    except ValueError:
        parsed = (0, 0.0)
    if parsed[0] < 1 or parsed[1] <= 0:
        raise SystemExit(f"zsched bench: --sustain takes RATE:SECONDS, like 2000:30; got {text!r}")
    return parsed


def main(argv: list[str] | None = None) -> int:
    """Run the chosen scenarios; print the table; write the JSON. Returns the exit status."""
    args = parser().parse_args(argv)
    sustain = _sustain(args.sustain)  # checked before a server is started
    named = ",".join(args.names) or args.scenario
    chosen = (
        [s for s in SCENARIOS if s not in OPT_IN] if named == "all" else [s.strip().lower() for s in named.split(",")]
    )
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown:
        print(
            f"zsched bench: unknown scenario {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}", file=sys.stderr
        )
        return 2
    server = None
    if args.redis_url is None:
        server = EmbeddedServer(tempfile.mkdtemp(prefix="zsched-bench-valkey-"), persistent=False).start()
    url = args.redis_url or server.url  # type: ignore[union-attr]
    ctx = Context(url, scale=args.scale, progress=not args.no_progress, sustain=sustain)
    started = time.monotonic()
    figures = ctx.figures
    durations: dict[str, float] = {}
    try:
        for name in chosen:
            print(f"{name.upper()} ...", file=sys.stderr, flush=True)
            t0 = time.monotonic()
            figures += SCENARIOS[name](ctx)
            durations[name] = round(time.monotonic() - t0, 1)
        info = server_info(url)
    finally:
        ctx.cleanup()
        if server is not None:
            server.stop()
    total_s = time.monotonic() - started
    print(table(figures))
    print(
        f"\n{info['server']} {info['version']} on {machine()['cpus']} CPUs ({machine()['cpu_model']}); "
        f"commit {commit()}; {total_s:.0f} s; {_s3_baseline(figures)}",
        flush=True,
    )
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit(),
        "machine": machine(),
        "server": info,
        "scale": args.scale,
        "scenarios": chosen,
        "durations_s": durations,
        "total_s": round(total_s, 1),
        "figures": [{**asdict(f), "ratio": f.ratio, "status": f.status} for f in figures],
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}", file=sys.stderr)
    return 0
