"""The README's redis-cli recipes (issue #12): every ``$R ...`` line under "Questions `redis-cli` answers" runs
as written, through ``zsched redis-cli`` and a real redis-cli, on a private embedded server the library filled,
and prints what its comment promises.

The README is read when the test runs, so the test follows it: a recipe the test has no check for fails
(add one to ``CHECKS``), and so does a check whose recipe left the README. The recipes name the default prefix
``zsched``, so they run only on a private server in a temporary folder, never on a shared Redis.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
import redis

from tests.conftest import ManualClock
from tests.helpers import Recorder, tick
from zsched import Core, Keyspace, RetryPolicy, Scheduler
from zsched.cli import rediscli
from zsched.delivery import Router
from zsched.embedded import EmbeddedServer
from zsched.models import Notification

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
HEADING = "### Questions `redis-cli` answers"
DATE_MS = "$(date +%s%3N)"  # the shell's epoch ms; expanded here, when the recipe runs
NOW = "@now-ms@"  # DATE_MS's place among a recipe's arguments until then
SHELL_OPERATORS = {"|", "||", "&", "&&", ";", "<", ">", ">>"}


@dataclass
class Recipe:
    """One ``$R ...`` line of the README's sh block."""

    line: int  # in README.md
    args: list[str]  # what follows $R, shell quoting undone; NOW where the line has DATE_MS
    comment: str  # what the recipe promises, continuation lines included

    def __str__(self) -> str:
        return f"README.md:{self.line}: $R {shlex.join(self.args)}  # {self.comment}"


def _comment_start(line: str) -> int:
    """Where the shell comment of ``line`` starts (a ``#`` opening a word, outside quotes); -1 if none."""
    quote = ""
    for i, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return i
    return -1


def read_recipes() -> tuple[list[str], list[Recipe]]:
    """The README's ``R`` (as ``$R`` splits into words) and its recipes, in order."""
    lines = README.read_text(encoding="utf-8").splitlines()
    assert HEADING in lines, f"README.md has no {HEADING!r} section"
    start = lines.index(HEADING) + 1
    fence = next(
        (i for i in range(start, len(lines)) if lines[i].strip() == "```sh" or lines[i].startswith("#")), len(lines)
    )
    assert fence < len(lines) and lines[fence].strip() == "```sh", f"no ```sh block under {HEADING!r}"
    end = next(i for i in range(fence + 1, len(lines)) if lines[i].strip() == "```")
    command: list[str] = []
    recipes: list[Recipe] = []
    for number in range(fence + 2, end + 1):  # README line numbers are 1-based
        text = lines[number - 1]
        cut = _comment_start(text)
        code, comment = (text[:cut], text[cut + 1 :].strip()) if cut >= 0 else (text, "")
        code = code.strip()
        if not code:
            if comment:  # a comment continued on its own line belongs to the recipe above
                assert recipes, f"README.md:{number}: a comment before any recipe"
                recipes[-1].comment += " " + comment
            continue
        if code.startswith("R="):
            (assignment,) = shlex.split(code)
            command = assignment.removeprefix("R=").split()  # unquoted $R splits into words
            continue
        words = shlex.split(code.replace(DATE_MS, f" {NOW} "))
        assert words[0] == "$R", f"README.md:{number}: the test runs only `$R ...` recipes; teach it {text!r}"
        unknown = [w for w in words[1:] if "$" in w or "`" in w or w in SHELL_OPERATORS]
        assert not unknown, f"README.md:{number}: shell syntax the test does not expand: {unknown}; teach it"
        assert comment, f"README.md:{number}: a recipe says what it answers in a comment"
        recipes.append(Recipe(number, words[1:], comment))
    assert command, f"the sh block under {HEADING!r} sets no R"
    assert recipes, f"the sh block under {HEADING!r} has no recipes"
    return command, recipes


# -- the data the recipes look at ----------------------------------------------------------------------------


@dataclass
class World:
    """A private server the library filled, and which notification is which."""

    data_dir: Path
    server: EmbeddedServer
    zs: Scheduler
    alice: int  # single recipient, pending: notification 1
    billing: int  # created_by billing, pending
    urgent: int  # pending in due:urgent, so not in due
    sent: int
    failed: int  # its channel raised, no retry left
    call: int  # a 3-recipient call (alice, bob, frank), its first two claimed
    in_flight: int  # the call's alice: claimed under a lease of an hour
    stuck: int  # the call's bob: claimed under a lease that expired long ago
    still_in_call: int  # the call's frank: pending inside the call

    def status(self, notification_id: int) -> Notification:
        return self.zs.status(notification_id)


def _ms(moment: datetime | None) -> int:
    assert moment is not None
    return round(moment.timestamp() * 1000)


def _sms_gateway_down(n: Notification) -> None:
    raise ConnectionRefusedError(f"sms gateway unreachable for {n.recipient}")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    data_dir = tmp_path / "zs"
    # The scripts run 10 minutes in the past: what they make due or lease "now" is overdue, or expired, by the
    # wall clock the recipes' $(date +%s%3N) reads; what is due in an hour is still ahead.
    clock = ManualClock(int(time.time() * 1000) - 600_000)
    with EmbeddedServer(data_dir, persistent=False) as server:
        core = Core(Keyspace("zsched"), retry=RetryPolicy(delays_ms=()), clock=clock)  # the first failure is final
        zs = Scheduler(redis.Redis.from_url(server.url), core=core)
        try:
            one = zs.schedule(["alice"], "Invoice ready", "Your March invoice", delay=3600).notification_ids
            assert one == [1], "notification 1 must have its own record for the state and payload recipes"
            (billing,) = zs.schedule(
                ["erin"], "Card expiring", "Update it", delay=7200, created_by="billing"
            ).notification_ids
            (urgent,) = zs.schedule(
                ["grace"], "Outage", "We are on it", delay=10800, priority="urgent"
            ).notification_ids
            (sent,) = zs.schedule(["carol"], "Welcome", "Hello", delay=1).notification_ids
            (failed,) = zs.schedule(["dave"], "Your code", "1234", delay=1, channels=["sms"]).notification_ids
            clock.advance(2000)
            router = Router({"websocket": Recorder()})
            router.register("sms", _sms_gateway_down)
            worker = tick(zs, router)
            assert worker.delivered == 1 and zs.status(sent).scheduled_status == "sent"
            assert zs.status(failed).scheduled_status == "failed"

            call = zs.schedule(["alice", "bob", "frank"], "Standup", "10:00", delay=1, created_by="ops")
            in_flight, stuck, still_in_call = call.notification_ids
            clock.advance(2000)
            partition = core.keys.partitions[0]
            for lease_ms, expected in ((3_600_000, in_flight), (1000, stuck)):
                claimed = zs.run(core.claim(partition, 1, lease_ms))
                assert [n.id for n in claimed.notifications] == [expected]
            assert zs.status(still_in_call).scheduled_status == "pending"
            yield World(
                data_dir=data_dir,
                server=server,
                zs=zs,
                alice=1,
                billing=billing,
                urgent=urgent,
                sent=sent,
                failed=failed,
                call=in_flight,
                in_flight=in_flight,
                stuck=stuck,
                still_in_call=still_in_call,
            )
        finally:
            zs.close()


def run_recipe(world: World, command: list[str], args: list[str]) -> subprocess.CompletedProcess[str]:
    """``$R ARGS`` as the README's reader runs it, in the repository, on ``world``'s server."""
    now = str(int(time.time() * 1000))
    argv = [*command, "--data-dir", str(world.data_dir), *(now if a == NOW else a for a in args)]
    return subprocess.run(
        argv,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "ZSCHED_REDIS_URL": ""},  # the embedded server in --data-dir, never a configured Redis
    )


# -- what each recipe promises -------------------------------------------------------------------------------

Check = Callable[[World, list[str], Recipe, Callable[[list[str]], list[str]]], None]


def _pairs(out: list[str]) -> list[tuple[str, str]]:
    assert len(out) % 2 == 0, f"expected member/score or field/value pairs, got {out}"
    return list(zip(out[::2], out[1::2], strict=True))


def _ids(out: list[str], who: str) -> list[int]:
    members = [line.split(" ") for line in out]
    assert all(len(m) == 2 and m[0] == who and re.fullmatch(r"\d{16}", m[1]) for m in members), out
    return [int(m[1]) for m in members]


def check_due(w: World, out: list[str], recipe: Recipe, rerun: Callable[[list[str]], list[str]]) -> None:
    due = _pairs(out)
    assert [member for member, _ in due] == ["-" + str(w.call), str(w.alice), str(w.billing)]
    assert [int(score) for _, score in due] == [
        _ms(w.status(w.call).scheduled_at),
        _ms(w.status(w.alice).scheduled_at),
        _ms(w.status(w.billing).scheduled_at),
    ]
    # the comment: the other priorities have their own due sets
    assert w.zs.redis.zrange("zsched:{p0}:due:urgent", 0, -1) == [str(w.urgent).encode()]


def check_overdue(w: World, out: list[str], recipe: Recipe, rerun: Callable[[list[str]], list[str]]) -> None:
    assert out == ["-" + str(w.call)], "only the call fell due (10 minutes ago); the rest is due in hours"


def check_in_flight(w: World, out: list[str], recipe: Recipe, rerun: Callable[[list[str]], list[str]]) -> None:
    leases = dict(_pairs(out))
    assert set(leases) == {str(w.in_flight), str(w.stuck)}
    now = time.time() * 1000
    assert int(leases[str(w.stuck)]) < now < int(leases[str(w.in_flight)]), f"lease deadlines in epoch ms: {leases}"


def check_stuck(w: World, out: list[str], recipe: Recipe, rerun: Callable[[list[str]], list[str]]) -> None:
    assert out == [str(w.stuck)], "only the 1 s lease has expired; the hour-long one has not"


def check_failed(w: World, out: list[str], recipe: Recipe, rerun: Callable[[list[str]], list[str]]) -> None:
    assert out == [str(w.failed)]


def check_state(w: World, out: list[str], recipe: Recipe, rerun: Callable[[list[str]], list[str]]) -> None:
    assert recipe.args[2] == str(w.alice), "the data has notification 1 only"
    (line,) = out
    state = json.loads(line)
    assert state["status"] == "pending" == w.status(w.alice).scheduled_status
    assert state["recipient"] == "alice" and "last_error" not in state
    # "and its last error": the same recipe for the notification whose channel raised
    (line,) = rerun([*recipe.args[:2], str(w.failed)])
    state = json.loads(line)
    assert state["status"] == "failed" and state["last_error"] == w.status(w.failed).last_error
    assert "sms gateway unreachable for dave" in state["last_error"]


def check_payload(w: World, out: list[str], recipe: Recipe, rerun: Callable[[list[str]], list[str]]) -> None:
    assert recipe.args[2] == str(w.alice), "the data has notification 1 only"
    (line,) = out
    payload = json.loads(line)
    assert (payload["title"], payload["message"]) == ("Invoice ready", "Your March invoice")


def check_alice(w: World, out: list[str], recipe: Recipe, rerun: Callable[[list[str]], list[str]]) -> None:
    ids = _ids(out, "alice")
    assert ids == [w.alice, w.in_flight] == sorted(n.id for n in w.zs.list_for("alice").items)


def check_billing(w: World, out: list[str], recipe: Recipe, rerun: Callable[[list[str]], list[str]]) -> None:
    ids = _ids(out, "billing")
    assert ids == [w.billing] == [n.id for n in w.zs.list(created_by="billing").items]


def check_counters(w: World, out: list[str], recipe: Recipe, rerun: Callable[[list[str]], list[str]]) -> None:
    totals = dict(_pairs(out))
    assert (totals["scheduled"], totals["sent"], totals["failed"]) == ("8", "1", "1"), totals
    assert totals == {name: str(count) for name, count in w.zs.stats().totals.items()}


def check_calls(w: World, out: list[str], recipe: Recipe, rerun: Callable[[list[str]], list[str]]) -> None:
    (call, header), *more = _pairs(out)
    assert call == str(w.call) and not more, out
    due, created, count, claimed, offset, priority, created_by = header.split(" ")
    n = w.status(w.call)
    assert (int(due), int(created)) == (_ms(n.scheduled_at), _ms(n.created_at))
    assert (count, claimed, priority, created_by) == ("3", "2", "normal", "ops"), "2 of its 3 recipients claimed"
    assert int(offset) > 0, "where the next recipient starts in call_recipients"


KEY = r"zsched:\{p0\}:"
CHECKS: dict[tuple[str, ...], Check] = {  # a recipe's arguments, each a regex, -> what it must print
    ("ZRANGE", KEY + "due", "0", r"\d+", "WITHSCORES"): check_due,
    ("ZRANGE", KEY + "due", "-inf", NOW, "BYSCORE"): check_overdue,
    ("ZRANGE", KEY + "processing", "0", "-1", "WITHSCORES"): check_in_flight,
    ("ZRANGE", KEY + "processing", "-inf", NOW, "BYSCORE"): check_stuck,
    ("ZRANGE", KEY + "failed", "0", "-1"): check_failed,
    ("HGET", KEY + "state", "1"): check_state,
    ("HGET", KEY + "notifications", "1"): check_payload,
    ("ZRANGE", KEY + "by_recipient", r"\[alice ", r"\[alice!", "BYLEX"): check_alice,
    ("ZRANGE", KEY + "by_creator", r"\[billing ", r"\[billing!", "BYLEX"): check_billing,
    ("HGETALL", KEY + "counters"): check_counters,
    ("HGETALL", KEY + "calls"): check_calls,
}


def check_for(recipe: Recipe) -> tuple[tuple[str, ...], Check] | None:
    for pattern, check in CHECKS.items():
        if len(pattern) == len(recipe.args) and all(
            re.fullmatch(p, a) for p, a in zip(pattern, recipe.args, strict=True)
        ):
            return pattern, check
    return None


def test_every_recipe_has_a_check_and_every_check_a_recipe() -> None:
    command, recipes = read_recipes()
    assert command[-1] == "redis-cli" and command[0].endswith("zsched"), command
    unknown = [str(r) for r in recipes if check_for(r) is None]
    assert not unknown, "recipes this test has no check for; add one to CHECKS:\n" + "\n".join(unknown)
    used = {found[0] for r in recipes if (found := check_for(r)) is not None}
    gone = [p for p in CHECKS if p not in used]
    assert not gone, f"checks whose recipe is no longer in the README; update or drop them: {gone}"


def test_each_recipe_prints_what_its_comment_promises(world: World) -> None:
    if rediscli.find_cli() is None:  # CI installs it (redis-tools comes with redis-server): never skipped
        pytest.fail(
            "the README's recipes need redis-cli (or valkey-cli) on PATH, as dev and CI machines have: "
            "apt install redis-tools (or brew install redis)"
        )
    command, recipes = read_recipes()
    assert (ROOT / command[0]).exists(), f"{command[0]} (the README's R) is missing: run `make install`"
    failures: list[str] = []
    for recipe in recipes:
        found = check_for(recipe)
        if found is None:
            failures.append(f"{recipe}\n    no check for this recipe; add one to CHECKS")
            continue

        def rerun(args: list[str]) -> list[str]:
            done = run_recipe(world, command, args)
            assert done.returncode == 0, f"exit {done.returncode}: {done.stderr.strip()}"
            assert not done.stdout.startswith(("ERR", "(error)")), done.stdout
            assert world.server.password not in done.stdout + done.stderr, "the password was printed"
            return done.stdout.splitlines()

        try:
            found[1](world, rerun(recipe.args), recipe, rerun)
        except AssertionError as exc:
            failures.append(f"{recipe}\n    {exc}".replace("\n", "\n    "))
    assert not failures, "README recipes that do not answer as promised:\n" + "\n".join(failures)
