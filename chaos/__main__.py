"""The chaos runner: every fault family at full size, then the state machine at length; one table.

    python -m chaos                      # all families (make chaos)
    python -m chaos worker-crash outage  # some of them

Writes chaos/results/latest.json and exits non-zero when any family lost a notification or broke a bound.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from . import cuts, dropped_replies, outage, poison, redis_crash, slow_channel, worker_crash
from .harness import ROOT, Figures

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
STATE_MACHINE_EXAMPLES = 500
STATE_MACHINE_STEPS = 50


def state_machine() -> Figures:
    """Run the hypothesis state-machine test with many more examples than ``make test`` does."""
    figures = Figures(
        family="state machine",
        tried=f"hypothesis vs model: {STATE_MACHINE_EXAMPLES} runs x <= {STATE_MACHINE_STEPS} steps",
    )
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="chaos-sm-") as tmp:
        report = Path(tmp) / "steps.json"
        env = {
            **os.environ,
            "ZSCHED_STATE_MACHINE_EXAMPLES": str(STATE_MACHINE_EXAMPLES),
            "ZSCHED_STATE_MACHINE_STEPS": str(STATE_MACHINE_STEPS),
            "ZSCHED_STATE_MACHINE_REPORT": str(report),
        }
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "tests/integration/test_state_machine.py::test_scripts_follow_the_model[valkey]",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        steps: dict[str, int] = msgspec.json.decode(report.read_bytes()) if report.exists() else {}
    examples = steps.pop("examples", 0)
    figures.faults = sum(steps.values())  # here: steps checked against the model
    figures.notes = {"examples": examples, "steps by kind": steps}
    figures.check(done.returncode == 0, "the model and the scripts disagree:\n" + done.stdout[-3000:])
    return figures.finish(started)


FAMILIES: dict[str, Callable[[], Figures]] = {
    "worker-crash": worker_crash.run,
    "redis-crash": redis_crash.run,
    "outage": outage.run,
    "cuts": cuts.run,
    "slow-channel": slow_channel.run,
    "poison": poison.run,
    "dropped-replies": dropped_replies.run,
    "state-machine": state_machine,
}

COLUMNS = (
    ("family", 16),
    ("tried", 52),
    ("faults", 7),
    ("scheduled", 9),
    ("delivered", 9),
    ("lost", 5),
    ("duplicated", 10),
    ("dup bound", 9),
    ("dedup dups", 10),
    ("failed", 6),
    ("s", 6),
    ("ok", 3),
)


def table(rows: list[Figures]) -> str:
    """The figures as one fixed-width table."""
    head = "  ".join(f"{name:<{width}}" for name, width in COLUMNS)
    lines = [head, "-" * len(head)]
    for f in rows:
        cells = (
            f.family,
            f.tried,
            f.faults,
            f.scheduled,
            f.delivered,
            f.lost,
            f.duplicated,
            "-" if f.duplicate_bound is None else f.duplicate_bound,
            f.dedup_duplicates,
            f.failed,
            f.seconds,
            "yes" if f.ok else "NO",
        )
        lines.append("  ".join(f"{cell!s:<{width}}" for cell, (_, width) in zip(cells, COLUMNS, strict=True)))
    return "\n".join(lines)


def main(names: list[str]) -> int:
    """Run the named families (all by default), print the table and notes, write the JSON; exit status."""
    unknown = [n for n in names if n not in FAMILIES]
    if unknown:
        print(f"unknown family {unknown}; choose from {', '.join(FAMILIES)}", file=sys.stderr)
        return 2
    started = time.monotonic()
    rows: list[Figures] = []
    for name in names or list(FAMILIES):
        print(f"chaos: {name} ...", flush=True)
        rows.append(FAMILIES[name]())
        print(f"chaos: {name} done in {rows[-1].seconds} s ({'ok' if rows[-1].ok else 'FAILED'})", flush=True)
    print()
    print(table(rows))
    for f in rows:
        for key, value in f.notes.items():
            print(f"  {f.family}: {key} = {value}")
        for problem in f.problems:
            print(f"  {f.family}: PROBLEM: {problem}")
    total_s = round(time.monotonic() - started, 1)
    print(f"\n{sum(f.lost for f in rows)} lost in total; {total_s} s")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_bytes(
        msgspec.json.format(msgspec.json.encode({"seconds": total_s, "ok": all(f.ok for f in rows), "families": rows}))
        + b"\n"
    )
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0 if all(f.ok for f in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
