"""A service hosts the consumer on its own event loop."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from consume.helpers import COMPLETED_EVENTS, HERE, STREAM, events, results
from consume.redis_server import RedisServer
from shardflow._loop import run
from shardflow.batch.config import RunConfig
from shardflow.model.loader import use_app_dir
from shardflow.queue.consumer import Consumer
from shardflow.queue.producer import enqueue
from shardflow.queue.settings import ConsumerSettings


def test_a_service_runs_the_consumer_on_its_loop_and_stops_it(redis_server: RedisServer,
                                                              monkeypatch) -> None:
    monkeypatch.setenv("SHARDFLOW_TEST_REDIS", redis_server.url)
    use_app_dir(str(HERE))
    consumer = Consumer("flows:work", ConsumerSettings(redis_server.url, STREAM, consumer="svc",
                                                        events_stream=f"{STREAM}:events"),
                        RunConfig(workers=1))

    async def service() -> list[str]:
        client = aioredis.Redis.from_url(redis_server.url)
        try:
            running = asyncio.ensure_future(consumer.run())
            ids = await enqueue(client, STREAM, [{"id": i} for i in range(5)] + [b'{"id": "raw"}'])
            seen, last = 0, "0-0"
            while seen < len(ids):  # the results stream, as the service's own reader sees it
                reply = await client.xread({f"{STREAM}:results": last}, block=30_000)
                assert reply, f"only {seen} results"
                seen += len(reply[0][1])
                last = reply[0][1][-1][0]
            assert consumer.healthy is None
            consumer.stop()
            outcome = await running
            assert outcome.results == 6 and outcome.unacknowledged == 0
            return ids
        finally:
            await client.aclose()

    ids = run(service())
    found = results(redis_server.client())
    assert sorted(found) == sorted(ids)
    assert found[ids[-1]][0]["id"] == "raw"
    assert events(redis_server.client()) == {m: COMPLETED_EVENTS for m in ids}
