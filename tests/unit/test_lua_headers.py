"""Each Lua script's header is its contract: the KEYS and ARGV it names are the ones its body uses,
and the Python side passes exactly that many keys, all in one hash tag."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from zsched import Core, Keyspace
from zsched.engine import Script
from zsched.engine.scripts import NAMES, sources
from zsched.models import Notification, ms_to_datetime

HEADER = re.compile(r"^-- (KEYS|ARGV)\[(\d+)(\.\.)?\]", re.M)
BODY = re.compile(r"(KEYS|ARGV)\[(\d+)\]")


def _split(source: str) -> tuple[str, str]:
    """The header is the run of comment lines the script opens with; the body is the rest."""
    lines = source.splitlines()
    end = next(i for i, line in enumerate(lines) if not line.startswith("--"))
    return "\n".join(lines[:end]), "\n".join(lines[end:])


def _contract(source: str) -> tuple[dict[str, set[int]], dict[str, int | None]]:
    header, _ = _split(source)
    named: dict[str, set[int]] = {"KEYS": set(), "ARGV": set()}
    varargs: dict[str, int | None] = {"KEYS": None, "ARGV": None}
    for kind, index, rest in HEADER.findall(header):
        if rest:
            varargs[kind] = int(index)
        else:
            named[kind].add(int(index))
    return named, varargs


@pytest.mark.parametrize("name", NAMES)
def test_header_names_what_the_body_uses(name: str) -> None:
    source = sources()[name]
    assert source.startswith(f"-- {name}: "), "a header opens with the script's name and purpose"
    assert "-- Returns:" in source
    named, varargs = _contract(source)
    used: dict[str, set[int]] = {"KEYS": set(), "ARGV": set()}
    for kind, index in BODY.findall(_split(source)[1]):
        used[kind].add(int(index))
    for kind in ("KEYS", "ARGV"):
        start = varargs[kind]
        fixed_used = {i for i in used[kind] if start is None or i < start}
        assert fixed_used == named[kind], (
            f"{name}: {kind} named in header {sorted(named[kind])}, used {sorted(fixed_used)}"
        )
        if start is None:
            assert named[kind] == set(range(1, len(named[kind]) + 1)), f"{name}: {kind} numbered without gaps"


def _steps(core: Core) -> list[Script]:
    p = core.keys.partitions[0]
    n = Notification(
        id=1,
        recipient="a",
        title="t",
        message="m",
        scheduled_at=ms_to_datetime(0),
        scheduled_status="processing",
        created_at=ms_to_datetime(0),
        attempts=1,
    )
    ops = [
        core.schedule(["a", "b"], "t", "m", delay=timedelta(seconds=1), idempotency_key="k"),
        core.cancel(1),
        core.reschedule(1, delay=5),
        core.claim(p, 10, 1000),
        core.ack(p, [1]),
        core.fail(p, [(n, "boom")]),
        core.reap(p),
        core.purge(p),
    ]
    return [step for op in ops for step in next(op) if isinstance(step, Script)]


def test_python_passes_the_header_keys_all_in_one_hash_tag() -> None:
    core = Core(Keyspace("zsched", partitions=4))
    steps = _steps(core)
    assert {s.name for s in steps} == {"schedule", "claim", "ack", "retry", "cancel", "reschedule", "reap", "purge"}
    for step in steps:
        named, varargs = _contract(sources()[step.name])
        assert varargs["KEYS"] is None and len(step.keys) == len(named["KEYS"]), step.name
        tags = {re.search(r"\{[^}]*\}", key).group(0) for key in step.keys}  # type: ignore[union-attr]
        assert len(tags) == 1, f"{step.name} touches several hash tags: {tags}"
        assert len(step.args) >= len(named["ARGV"]), step.name


def test_no_value_is_built_into_script_text() -> None:
    for name, source in sources().items():
        code = "\n".join(line for line in source.splitlines() if not line.startswith("--"))
        assert "loadstring" not in code and "redis.call('EVAL" not in code, name
        assert "zsched" not in code, f"{name} names a key prefix itself; keys must come in KEYS"
