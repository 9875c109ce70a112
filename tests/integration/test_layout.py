"""The partition count is recorded in Redis on first use; a process with another count refuses to run."""

from __future__ import annotations

import subprocess
import sys

import pytest
import redis

from zsched import Core, Keyspace, Scheduler
from zsched.errors import LayoutError


def test_first_use_records_the_count_and_a_mismatch_is_refused(redis_url: str, prefix: str) -> None:
    four = Scheduler(redis.Redis.from_url(redis_url), core=Core(Keyspace(prefix, partitions=4)))
    (nid,) = four.schedule(["alice"], "Hi", "there", delay=60).notification_ids
    assert four.redis.hget(f"{prefix}:{{meta}}:layout", "partitions") == b"4"
    one = Scheduler(redis.Redis.from_url(redis_url), core=Core(Keyspace(prefix, partitions=1)))
    with pytest.raises(LayoutError, match=r"ZSCHED_PARTITIONS=1, but the keyspace .* was created with 4 partitions"):
        one.status(nid)  # with one partition, id % 1 would look in the wrong partition and say "not found"
    assert four.status(nid).scheduled_status == "pending"
    four.close()
    one.close()


def test_a_worker_with_another_count_refuses_to_start(redis_url: str, prefix: str) -> None:
    Scheduler(redis.Redis.from_url(redis_url), core=Core(Keyspace(prefix, partitions=2))).stats()
    command = [sys.executable, "-m", "zsched.cli", "worker", "--redis-url", redis_url, "--prefix", prefix]
    done = subprocess.run([*command, "--partitions", "3"], capture_output=True, text=True, timeout=30)
    assert done.returncode != 0
    assert "ZSCHED_PARTITIONS=3, but the keyspace" in done.stderr and "created with 2 partitions" in done.stderr
