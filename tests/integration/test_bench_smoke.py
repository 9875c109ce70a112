"""A quick run of every benchmark scenario at tiny sizes, so the bench code cannot rot (no targets checked)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import (
    gateway,
    r_recurring,
    runner,
    s1_schedule,
    s2_lateness,
    s3_end_to_end,
    s4_claim,
    s5_memory,
    s7_purge,
    s8_email,
)
from bench.common import Context, Figure
from bench.shards import measure as measure_shards
from bench.soak import Soak
from zsched.cli import main as cli_main
from zsched.embedded import EmbeddedServer


@pytest.fixture
def ctx(redis_url: str) -> Iterator[Context]:
    context = Context(redis_url, scale=0.001, progress=False)
    yield context
    context.cleanup()


def _sane(figures: list[Figure]) -> None:
    assert figures
    for f in figures:
        assert f.value == f.value and f.value >= 0, f  # a number, not NaN
        assert f.status in ("", "pass", "short")


def test_s1_schedule_throughput(ctx: Context) -> None:
    figures = s1_schedule.measure(ctx, singles=20, many=2000)
    _sane(figures)
    assert all(f.baseline and f.ratio for f in figures)


def test_s2_lateness_counts_every_notification(ctx: Context) -> None:
    late, counts = s2_lateness.measure_rate(ctx, rate=200, seconds=0.25)
    assert late.extra["expected"] == 50 and late.extra["missing"] == 0 and late.extra["duplicated"] == 0
    assert late.extra["once"] == 50 and 0 <= late.extra["p50_ms"] <= late.extra["max_ms"] < 5000
    assert counts.value == 0


def test_s3_end_to_end_reaches_every_socket(ctx: Context) -> None:
    late, counts = s3_end_to_end.measure_windows(ctx, [(50, 0.2)], users=3)
    extra = late.extra
    assert extra["expected"] == 10 and extra["once"] == 10 and extra["missing"] == extra["duplicated"] == 0
    assert extra["misrouted"] == extra["lost_sockets"] == 0 and 0 <= extra["p50_ms"] <= extra["max_ms"] < 5000
    assert counts.value == 0 and late.baseline is None


def test_s4_claim_drains_with_two_workers(ctx: Context) -> None:
    figures = s4_claim.measure(ctx)
    _sane(figures)
    assert [f.note.split(";")[1].strip() for f in figures] == ["0 duplicated", "0 duplicated"]


def test_s5_memory_is_measured(ctx: Context) -> None:
    figures = s5_memory.measure(ctx)  # on a shared server the used_memory delta may even be negative
    assert len(figures) == 5 and all(f.value == f.value and f.unit == "B" for f in figures)


def test_recurring_memory_and_burst(ctx: Context) -> None:
    memory = r_recurring.memory_figures(ctx, "R1")  # on a shared server the used_memory delta may even be negative
    assert [f.unit for f in memory] == ["B", "B"] and all(f.value == f.value for f in memory)
    assert memory[0].target == 400 and memory[0].baseline is not None
    got = r_recurring.burst(ctx, 50, recurring=True)
    for firing in ("first", "second"):  # each schedule's first and second occurrence, each sent once
        assert got[firing]["count"] == got[firing]["once"] == 50, got
        assert 0 <= got[firing]["p50_ms"] <= got[firing]["max_ms"] < 5000
    assert got["sent"] == 100


def test_s8_emails_reach_the_smtp_server(ctx: Context) -> None:
    figures = s8_email.measure(ctx)
    _sane(figures)
    assert [f.note for f in figures] == ["50 due; 50 arrived"] * 2 and all(f.baseline for f in figures)


def test_runner_writes_table_and_json(redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "latest.json"
    code = cli_main(
        ["bench", "--scenario", "s6", "--scale", "0.0001", "--redis-url", redis_url, "--no-progress", "--out", str(out)]
    )
    assert code == 0
    assert "| S6 " in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["server"]["version"] and report["machine"]["cpus"] and report["commit"]
    assert {f["scenario"] for f in report["figures"]} == {"S5", "S6"}
    assert runner.main(["--scenario", "s9"]) == 2


def test_s7_purge_clears_a_backlog_while_probes_are_due(ctx: Context) -> None:
    got = s7_purge.measure_purge(ctx, 20_000, probe_rate=200, probe_s=0.5, give_up_s=45)
    assert got["records"] == 20_001 and got["drain_s"] < 45  # and the record the filler cloned them from
    for run in s7_purge.RUNS:
        assert got[f"{run}_count"] == 100 and got[f"{run}_missing"] == got[f"{run}_duplicated"] == 0
        assert 0 <= got[f"{run}_p50_ms"] <= got[f"{run}_max_ms"] < 5000
    rows = s7_purge.figures(got, deliver_per_s=1000.0)
    assert [f.unit for f in rows] == ["s", "rec/s", "ms"] and all(f.status in ("pass", "short") for f in rows)


def test_soak_keeps_records_and_memory_bounded() -> None:
    # Its own server, not the shared one: used_memory is server-wide.
    server = EmbeddedServer(Path(tempfile.mkdtemp(prefix="zsched-soak-test-")), persistent=False).start()
    try:
        soak = Soak(server.url, seconds=40, rate=200, keep_s=5, check_after_s=20, tolerance=1.0, period_s=5)
        soak.run()
    finally:
        server.stop()
    assert soak.delivered == soak.scheduled >= 7000
    assert sum(row.purged for row in soak.rows) >= soak.delivered // 2
    assert max(row.records for row in soak.rows[4:]) <= 200 * (5 + 4)  # retention + due lead + purge round
    assert soak.final <= 2 * soak.reference, (soak.final, soak.reference)  # generous: a short run warms up


def test_gateway_holds_sockets_and_delivers_to_each(ctx: Context) -> None:
    # Three processes (gateway, worker, load generator) at a tiny size: every socket held and served once.
    got = gateway.run(ctx, sockets=30, rate=200, seconds=0.5)
    assert got.held == 30 and got.lost == 0
    burst, sustained = got.burst, got.sustained
    assert burst["expected"] == burst["received"] == 30 and burst["missing"] == burst["duplicated"] == 0
    assert sustained["expected"] == sustained["received"] == 100 and sustained["duplicated"] == 0
    assert 0 <= sustained["p50_ms"] <= sustained["max_ms"] < 10_000 and sustained["cpu_ms_per_delivery"] > 0
    rows = gateway.figures(got)
    assert [f.unit for f in rows] == ["sockets", "KiB", "deliveries/s", "deliveries/s", "ms", "us"]
    assert rows[0].status == "pass" and all(f.status in ("", "pass", "short") for f in rows)


@pytest.mark.cluster
@pytest.mark.slow
def test_shards_compares_one_server_with_a_three_master_cluster() -> None:
    # The scenario starts its own valkey-server and 3-master cluster; the context's URL is not used.
    context = Context("redis://127.0.0.1:1/0", scale=0.001, progress=False)
    figures = measure_shards(context)
    _sane(figures)
    assert "shards" in runner.SCENARIOS and "shards" in runner.OPT_IN  # named only, not in ``make bench``
    rates = [f for f in figures if f.unit == "notif/s"]
    assert len(rates) == 8 and all(f.value > 0 for f in rates)
    assert [f.baseline is not None for f in rates] == [False, True] * 4  # 3 shards beside 1 shard
    expected = ["2,000", "2,000", "50", "50", "600", "600", "600", "600"]
    assert [f.note.split(" ")[0] for f in rates] == expected  # every notification counted, none before the window
    assert all("duplicated 0 (1 shard), 0 (3 shards)" in f.note for f in rates if f.scenario == "S4 shards")
    cpu = [f for f in figures if f.unit == "µs"]
    assert len(cpu) == 8 and all(f.value > 0 and f.baseline for f in cpu if "server" in f.name)
    shares = [f for f in figures if f.unit == "%"]
    assert len(shares) == 5
    for f in shares:  # six spread partitions: every master gets a part, none nearly all of it
        parts = [int(x) for x in f.note.split("shares ")[1].split(" %")[0].split("/")]
        assert len(parts) == 3 and min(parts) > 0 and f.value < 80, f
