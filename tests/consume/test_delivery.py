"""Poison messages, SIGTERM drain and backpressure, limits shared by consumers."""

from __future__ import annotations

import signal
import subprocess

import orjson

from consume.helpers import STREAM, add, consume, pending, results, start_consumer, wait_started
from consume.redis_server import RedisServer


def test_a_message_delivered_too_often_goes_to_the_dead_letter_stream(redis_server: RedisServer) -> None:
    client = redis_server.client()
    client.xgroup_create(STREAM, "shardflow", id="0", mkstream=True)
    poison = add(client, {"id": "poison"})[0]
    # Five consumers took it and died without a result (delivery count 5, long idle).
    client.xreadgroup("shardflow", "ghost", {STREAM: ">"}, count=1)
    client.xclaim(STREAM, "shardflow", "ghost", 0, [poison], idle=60_000, retrycount=5)
    healthy = add(client, {"id": "healthy"})[0]

    done = consume(redis_server.url, "--burst", "--claim-idle", "1", "--max-deliveries", "5")

    assert done.returncode == 0, done.stderr
    dead = client.xrange(f"{STREAM}:dead")
    assert len(dead) == 1
    fields = dead[0][1]
    assert fields[b"id"].decode() == poison
    assert orjson.loads(fields[b"data"]) == {"id": "poison"}
    assert fields[b"deliveries"] == b"6"
    assert b"more than --max-deliveries 5" in fields[b"error"]
    assert sorted(results(client)) == [healthy]  # the group went on
    assert pending(client) == 0
    assert "1 dead letters" in done.stderr


def test_sigterm_finishes_what_is_in_flight_and_leaves_the_rest_unread(redis_server: RedisServer) -> None:
    client = redis_server.client()
    ids = add(client, *({"id": i, "sleep": 0.5} for i in range(12)))
    consumer = start_consumer(redis_server.url, "--max-in-flight", "4", "--grace-seconds", "30")
    started = wait_started(client, 4)
    assert pending(client) == 4  # backpressure: it read only what it had room for
    consumer.send_signal(signal.SIGTERM)
    _, stderr = consumer.communicate(timeout=60)

    assert consumer.returncode == 0, stderr
    found = results(client)
    assert sorted(found) == sorted(ids[:4])
    assert sorted(str(r[0]["id"]) for r in found.values()) == sorted(started)
    assert pending(client) == 0
    group = client.xinfo_groups(STREAM)[0]
    assert group["lag"] == 8  # the eight it never read wait for the next consumer


def test_a_limit_holds_across_two_consumer_processes(redis_server: RedisServer) -> None:
    client = redis_server.client()
    ids = add(client, *({"id": i} for i in range(40)))
    client.xgroup_create(STREAM, "shardflow", id="0")
    both = [start_consumer(redis_server.url, "--burst", "--limit", "api=2", "--workers", "2",
                           "--max-in-flight", "10", target="flows:limited") for _ in range(2)]
    outputs = [c.communicate(timeout=90) for c in both]

    assert [c.returncode for c in both] == [0, 0], outputs
    found = results(client)
    assert sorted(found) == sorted(ids)
    assert {r[0]["status"] for r in found.values()} == {"completed"}
    assert int(client.get("peak")) <= 2  # four workers in two processes, two slots in all
    assert client.zcard(f"{STREAM}:shardflow:limit:api") == 0  # every lease given back


def test_consume_without_the_redis_extra_says_how_to_install_it(tmp_path) -> None:
    """Stands in for a machine without ``shardflow[redis]``: redis made unimportable."""
    blocker = tmp_path / "redis.py"
    blocker.write_text("raise ImportError('No module named redis', name='redis')\n")
    import os
    import sys

    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    refused = subprocess.run([sys.executable, "-m", "shardflow", "consume", "x:y", "--redis",
                              "redis://127.0.0.1:1", "--stream", "s"], env=env,
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2
    assert "pip install 'shardflow[redis]'" in refused.stderr


def test_a_consumer_restarted_under_its_name_runs_what_that_name_holds_first(
        redis_server: RedisServer) -> None:
    client = redis_server.client()
    client.xgroup_create(STREAM, "shardflow", id="0", mkstream=True)
    held = add(client, *({"id": i} for i in range(3)))
    client.xreadgroup("shardflow", "worker-a", {STREAM: ">"}, count=3)  # then it died
    fresh = add(client, {"id": "new"})

    # --claim-idle far away: only reading its own pending list can finish the three now.
    done = consume(redis_server.url, "--burst", "--consumer", "worker-a", "--claim-idle", "600")

    assert done.returncode == 0, done.stderr
    assert sorted(results(redis_server.client())) == sorted(held + fresh)
    assert "3 redelivered" in done.stderr
    assert pending(client) == 0


def test_a_second_sigterm_stops_at_once_and_leaves_the_rest_pending(redis_server: RedisServer) -> None:
    client = redis_server.client()
    add(client, *({"id": i, "sleep": 60} for i in range(3)))
    consumer = start_consumer(redis_server.url, "--grace-seconds", "600")
    wait_started(client, 3)
    consumer.send_signal(signal.SIGTERM)
    assert consumer.stderr is not None
    while "stop again to stop now" not in (line := consumer.stderr.readline()):
        assert line, "the consumer ended without saying it was stopping"
    consumer.send_signal(signal.SIGTERM)  # after the first was handled: signals coalesce
    _, stderr = consumer.communicate(timeout=60)
    assert consumer.returncode == 0, stderr
    assert "before 3 messages were acknowledged; they will be delivered again" in stderr
    assert results(client) == {}
    assert pending(client) == 3  # for whoever takes them over after --claim-idle
