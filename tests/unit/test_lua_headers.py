"""Each Lua script's header is its contract: the KEYS and ARGV it names are the ones its body uses, the
codes its Returns line names are the ones its body returns, its reply reader quotes the Returns line, and
the Python side (the engine, and the modules that call a script directly) passes exactly that many keys,
all in one hash tag."""

from __future__ import annotations

import ast
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

import zsched
from zsched import Core, Keyspace
from zsched.delivery.inbox import InboxDelivery
from zsched.engine import Script, list_dead, requeue_dead, reshard
from zsched.engine.minutes import add_minute
from zsched.engine.ownership import balance, leave
from zsched.engine.presence import write_sockets
from zsched.engine.processes import ProcessInfo, beat
from zsched.engine.recurrence import Rule
from zsched.engine.recurring_records import Definition, encode_definition
from zsched.engine.replies import READERS, MovingGroup, MovingItem
from zsched.engine.scripts import NAMES, lua_dir, sources
from zsched.engine.tables import table_page
from zsched.errors import OUTCOMES
from zsched.models import Notification, Payload, ms_to_datetime
from zsched.web.ratelimit import RateLimiter

HEADER = re.compile(r"^-- (KEYS|ARGV)\[(\d+)(\.\.)?\]", re.M)
BODY = re.compile(r"(KEYS|ARGV)\[(\d+)\]")
CODE = re.compile(r"\{'(\w+)'")
BODY_CODE = re.compile(r"(?:return|=) \{'(\w+)'")  # a reply returned, or built and returned later


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


def _returns(source: str) -> str:
    """The reply's shape: the Returns line and its ``|`` continuations, up to the last ``}``."""
    lines = _split(source)[0].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("-- Returns:"))
    shape = [lines[start].removeprefix("-- Returns:")]
    shape += [line[2:] for line in lines[start + 1 :] if line[2:].lstrip().startswith("|")]
    text = " ".join(" ".join(shape).split())
    return text[: text.rindex("}") + 1]


def test_every_script_file_is_registered() -> None:
    assert sorted(NAMES) == sorted(path.stem for path in lua_dir().glob("*.lua"))


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
        else:
            assert start == len(named[kind]) + 1, f"{name}: {kind}[{start}..] does not follow the named ones"


@pytest.mark.parametrize("name", NAMES)
def test_returns_names_the_codes_the_body_returns(name: str) -> None:
    source = sources()[name]
    promised = set(CODE.findall(_returns(source)))
    returned = set(BODY_CODE.findall(_split(source)[1]))
    assert promised == returned, f"{name}: header returns {sorted(promised)}, body {sorted(returned)}"
    done = {"created", "replayed", "staged", "cancelled", "rescheduled", "edited"}
    done |= {"advanced", "resumed", "finished", "stale", "paused", "deleted"}  # recurring schedules' moves
    done |= {"held", "flush", "busy", "gone"}  # a digest member's join: each is an outcome, none a refusal
    refusals = returned - done
    assert refusals <= OUTCOMES.keys(), f"{name}: codes {sorted(refusals - OUTCOMES.keys())} map to no exception"


@pytest.mark.parametrize("name", NAMES)
def test_reply_reader_quotes_the_returns_line(name: str) -> None:
    reader = READERS[name]
    doc = " ".join((reader.__doc__ or "").split())
    assert f"``{name}.lua``: {_returns(sources()[name])}" in doc, f"{reader.__name__} does not quote {name}.lua"


def _engine_steps(core: Core) -> list[Script]:
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
        core.schedule(["a"], "t", "m", delay=timedelta(seconds=1), idempotency_key="k"),  # one partition
        core.cancel(1),
        core.reschedule(1, delay=5),
        core.cancel_batch("1x3"),
        core.reschedule_batch("5x2-2x1", delay=5),
        core.claim(p, 10, 1000),
        core.ack(p, [1]),
        core.fail(p, [(n, "boom")]),
        core.skip(p, [(n, ["sms"], "a opted out of sms for type 'system'")]),
        core.renew(p, [n], 1000),
        core.reap(p),
        core.purge(p),
        requeue_dead(core, [1, 2, 3]),
        requeue_dead(core, everything=True),
        list_dead(core),
        core.status(1),
        core.set_contact("a", email="a@example.com", locale=None),
        core.erase_recipient("a"),
        core.pause("promo"),
        core.resume(),
        table_page(core, "upcoming"),
        add_minute(Core(core.keys, clock=lambda: 0), {"sent": 1}),  # a pinned clock: no TIME step before it
        beat(core, ProcessInfo(id="h:1:ab", kind="worker", host="h", pid=1, started_ms=0, version="0", partitions=[0])),
        write_sockets(core, "h:1:ab", {"a": 2, "b": 0}, full=False),
        balance(core, "h:1:ab", [0], 1000),  # enlists, renews what it holds, reads who holds the rest
        leave(core, "h:1:ab", [0], 1000),  # takes itself off, gives its leases up
        core.put_template("t", {"en": {"title": "t", "message": "m"}}),
        core.schedule_template(["a"], "t", delay=1),
        core.inbox("a"),
        core.mark_read("a", [1]),
        core.mark_all_read("a"),
        core.join_digest(p, msgspec.structs.replace(n, digest_key="k"), 1000),
    ]
    steps = [step for op in ops for step in next(op) if isinstance(step, Script)]
    edit = core.edit(1, title="new")  # reads first, then edits what it read
    next(edit)
    steps += edit.send(
        [[b'{"status":"pending","recipient":"a","scheduled_at":0,"created_at":0}', b'{"title":"t","message":"m"}']]
    )
    edit_batch = core.edit_batch("5x2-2x3", message="new")  # reads the call's payload, then edits it
    next(edit_batch)
    steps += edit_batch.send([b'{"title":"t","message":"m"}'])
    deleting = core.delete_template("t")
    next(deleting)
    steps += [step for step in deleting.send([[]]) if isinstance(step, Script)]  # no uses: straight to the script
    spread = core.schedule([f"r{i}" for i in range(8)], "t", "m", delay=1, idempotency_key="k")  # every partition
    stages = next(spread)
    commits = spread.send([[b"staged", 1, 1, 0, *range(len(s.args) - 14)] for s in stages if isinstance(s, Script)])
    create = core.create_recurring(["a"], "t", "m", every=60, created_by="ops")
    next(create)  # the server's time
    recurring = create.send([(1, 0)])
    stop = core.pause_recurring(1)
    next(stop)  # the schedule's record
    stored = Definition(
        rule=Rule(start_ms=0, every_ms=60_000),
        recipients=["a"],
        payload=Payload("t", "m", created_by="o"),
        created_at=0,
    )
    recurring += stop.send([b"active 60000 1 1 " + encode_definition(stored, msgspec.json.encode(stored.payload))])
    steps += _reshard_steps(core)
    return steps + [step for step in [*stages, *commits, *recurring] if isinstance(step, Script)]


def _reshard_steps(core: Core) -> list[Script]:
    """A reshard's scripts: seal (an old partition), move_out (from it), move_in (into the new generation's) and
    forward (back in the old one), for a many-recipient call whose recipients land in different new partitions."""
    keys = core.keys
    old = keys.partitions[0]
    keys.adopt((keys.generations[0], keys.generation(1, 3, 30)))
    try:
        state = '{"status":"pending","attempts":0,"recipient":"%s","scheduled_at":1000,"created_at":0}'
        items = [MovingItem(4 + 4 * k, 1000, state % who) for k, who in enumerate(["a", "b", "c", "d"])]
        moving = reshard._move(core, old, [MovingGroup("high -4", "{}", "ops", items)])
        ins = next(moving)
        forwards = moving.send(
            [[31 + n] * ((len(s.args) - 4) // 3) for n, s in enumerate(ins) if isinstance(s, Script)]
        )
        steps = [reshard.seal_step(old, 1), reshard._move_out(old, 10), *ins, *forwards]
    finally:
        keys.adopt(keys.generations[:1])
    return [s for s in steps if isinstance(s, Script)]


class _Recorder:
    """Stands in for a redis client: records each script call and answers with a reply of the right shape."""

    def __init__(self) -> None:
        self.calls: list[Script] = []

    def register_script(self, source: str) -> Any:
        name = next(n for n, s in sources().items() if s == source)

        async def call(keys: list[str], args: list[str | int], client: Any = None) -> list[Any]:
            self.calls.append(Script(name, list(keys), list(args)))
            canned: dict[str, list[Any]] = {
                "mark_delivered": [0, *[-1] * (len(args) - 2)],
                "publish_inbox": ["0-1"] * len(keys),
            }
            return canned.get(name, [1, 1, 0])

        return call


async def _direct_steps(keys: Keyspace) -> list[Script]:
    """The script calls made outside the engine that build their keys at run time: inbox delivery, rate limits."""
    recorder = _Recorder()
    batch = [
        Notification(
            id=i,
            recipient=r,
            title="t",
            message="m",
            scheduled_at=ms_to_datetime(0),
            scheduled_status="processing",
            created_at=ms_to_datetime(0),
        )
        for i, r in ((1, "a"), (2, "b"), (3, "a"))
    ]
    await InboxDelivery(recorder, keys).deliver(batch)
    await RateLimiter(recorder, keys.prefix, rate_per_s=1, burst=1).take("t")
    return recorder.calls


def _literal_calls() -> list[tuple[str, str, int]]:
    """Every ``<scripts>["name"](keys=[...])`` in the package: (where, script name, how many keys)."""
    package = Path(zsched.__file__).parent
    found = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Subscript)):
                continue
            name, keys = node.func.slice, next((k.value for k in node.keywords if k.arg == "keys"), None)
            if isinstance(name, ast.Constant) and name.value in NAMES and isinstance(keys, ast.List):
                found.append((f"{path.relative_to(package)}:{node.lineno}", name.value, len(keys.elts)))
    return found


def test_direct_calls_with_literal_keys_pass_the_header_keys() -> None:
    calls = _literal_calls()
    assert "mark_delivered" in {name for _, name, _ in calls}, "client acks call mark_delivered with its keys"
    for where, name, count in calls:
        named, varargs = _contract(sources()[name])
        assert varargs["KEYS"] is None and count == len(named["KEYS"]), f"{where}: {name} gets {count} keys"


async def test_python_passes_the_header_keys_all_in_one_hash_tag() -> None:
    keys = Keyspace("zsched", partitions=4)
    steps = _engine_steps(Core(keys)) + await _direct_steps(keys)
    called = {s.name for s in steps} | {name for _, name, _ in _literal_calls()}
    assert called == set(NAMES), f"scripts nobody calls: {sorted(set(NAMES) - called)}"
    for step in steps:
        named, varargs = _contract(sources()[step.name])
        if varargs["KEYS"] is None:
            assert len(step.keys) == len(named["KEYS"]), step.name
        else:
            assert len(step.keys) >= 1, step.name
        if step.name == "publish_inbox":  # one channel and message per inbox key (after the op key)
            assert len(step.args) == len(named["ARGV"]) + 2 * (len(step.keys) - 1), step.name
        tags = {key[key.find("{") : key.find("}") + 1] for key in step.keys}
        if step.name != "rate_limit":  # a token bucket belongs to no partition
            assert len(tags) == 1 and "" not in tags, f"{step.name} touches several hash tags, or none: {tags}"
        assert len(step.args) >= len(named["ARGV"]), step.name
        if varargs["ARGV"] is None:
            assert len(step.args) == len(named["ARGV"]), step.name


def test_no_value_is_built_into_script_text() -> None:
    for name, source in sources().items():
        code = "\n".join(line for line in source.splitlines() if not line.startswith("--"))
        assert "loadstring" not in code and "redis.call('EVAL" not in code, name
        assert "zsched" not in code, f"{name} names a key prefix itself; keys must come in KEYS"
