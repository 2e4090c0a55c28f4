"""The Redis scripts behind limits shared by consumers: leases that come back when their
holder stops renewing them, all-or-nothing slots, one rate schedule for every consumer."""

from __future__ import annotations

import asyncio
import time

from consume.helpers import HERE, STREAM, add, wait_started
from consume.redis_server import RedisServer
from shardflow._loop import run
from shardflow.batch.config import RunConfig
from shardflow.model.loader import use_app_dir
from shardflow.queue import scripts
from shardflow.queue.consumer import Consumer
from shardflow.queue.settings import ConsumerSettings


def test_a_dead_holders_lease_expires_and_its_slot_comes_back(redis_server: RedisServer) -> None:
    client = redis_server.client()
    acquire = client.register_script(scripts.ACQUIRE_LEASES)
    renew = client.register_script(scripts.RENEW_LEASES)
    assert acquire(["api"], ["dead:1", 300, 1]) == 1  # taken, then never renewed
    assert acquire(["api"], ["live:1", 10_000, 1]) == 0  # full while the lease lives
    time.sleep(0.4)  # the lease's lifetime passing is what is tested: no event to wait for
    assert acquire(["api"], ["live:1", 10_000, 1]) == 1
    assert client.zrange("api", 0, -1) == [b"live:1"]
    before = client.zscore("api", "live:1")
    renew(["api"], [20_000, "live:1"])
    assert client.zscore("api", "live:1") > before


def test_slots_of_several_limits_are_taken_all_or_nothing(redis_server: RedisServer) -> None:
    client = redis_server.client()
    acquire = client.register_script(scripts.ACQUIRE_LEASES)
    release = client.register_script(scripts.RELEASE_LEASES)
    assert acquire(["db"], ["a:1", 10_000, 1]) == 1
    assert acquire(["api", "db"], ["b:1", 10_000, 5, 1]) == 0
    assert client.zcard("api") == 0  # nothing held while it waits
    release(["db"], ["a:1"])
    assert acquire(["api", "db"], ["b:1", 10_000, 5, 1]) == 1


def test_one_rate_schedule_spaces_the_starts_of_every_consumer(redis_server: RedisServer) -> None:
    client = redis_server.client()
    reserve = client.register_script(scripts.RESERVE_START)
    # One start per 100 s, burst 2 (the milliseconds between calls vanish in the rounding).
    # Whoever books -- any consumer -- books on this one schedule.
    delays = [float(reserve(["rate:api"], [100_000.0, 100_000.0])) for _ in range(5)]
    assert delays[:2] == [0.0, 0.0]  # the burst
    assert [round(d, -3) for d in delays[2:]] == [100_000.0, 200_000.0, 300_000.0]


def test_a_live_holder_renews_its_lease_past_its_lifetime(redis_server: RedisServer,
                                                          monkeypatch) -> None:
    """A step holding a slot longer than the lease's lifetime keeps it (renewed every third
    of the lifetime) and gives it back when it ends."""
    monkeypatch.setenv("SHARDFLOW_TEST_REDIS", redis_server.url)
    use_app_dir(str(HERE))
    client = redis_server.client()
    add(client, {"id": "long", "sleep": 4})
    key = f"{STREAM}:shardflow:limit:api"
    settings = ConsumerSettings(redis_server.url, STREAM, consumer="holder", burst=True,
                                lease_seconds=1.5)
    consumer = Consumer("flows:held", settings, RunConfig(workers=1, limits={"api": 1}))

    async def watch() -> float:
        running = asyncio.ensure_future(consumer.run())
        await asyncio.to_thread(wait_started, client, 1)
        first = client.zrange(key, 0, -1, withscores=True)[0][1]
        await asyncio.sleep(2.5)  # past the lifetime the lease was taken with
        seconds, micros = client.time()
        (lease, expiry), = client.zrange(key, 0, -1, withscores=True)
        assert lease.startswith(b"holder:") and expiry > first
        await running
        return expiry - (seconds * 1000 + micros / 1000)

    assert run(watch()) > 0  # still alive 2.5 s into a 1.5 s lease
    assert client.zcard(key) == 0  # given back when the step ended
