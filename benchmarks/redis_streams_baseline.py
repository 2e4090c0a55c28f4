"""The hand-written Redis Streams consumer ``bench_consume.py`` compares against (the anchor
of issue 21): uvloop processes of one consumer group, ``XREADGROUP`` 256 at a time, the
notify fork/join written inline per message, and each batch's results ``XADD`` + ``XACK``
in one pipeline. No engine, no dedup marker, no reclaiming: the floor of the work.

Run as ``python benchmarks/redis_streams_baseline.py URL STREAM GROUP NAME``; it exits when
the stream has nothing new for it.
"""

from __future__ import annotations

import asyncio
import gc
import sys
from typing import Any

import orjson
import redis.asyncio as aioredis

from shardflow._loop import run


async def _noop(ctx: dict[str, Any], key: str) -> None:
    ctx[key] = True


async def _notify(raw: bytes) -> bytes:
    ctx: dict[str, Any] = orjson.loads(raw)
    await _noop(ctx, "processed")
    await asyncio.gather(_noop(ctx, "email_sent"), _noop(ctx, "slack_sent"), _noop(ctx, "sms_sent"))
    ctx["channels"] = [c for c in ("email", "slack", "sms") if ctx.get(f"{c}_sent")]
    return orjson.dumps({"id": ctx.get("id"), "status": "completed", "context": ctx})


async def consume(url: str, stream: str, group: str, name: str) -> None:
    client = aioredis.Redis.from_url(url)
    results = f"{stream}:results"
    while True:
        reply = await client.xreadgroup(group, name, {stream: ">"}, count=256, block=200)
        if not reply:
            break
        entries = reply[0][1]
        lines = await asyncio.gather(*(_notify(fields[b"data"]) for _, fields in entries))
        async with client.pipeline(transaction=False) as pipe:
            for (message_id, _), line in zip(entries, lines, strict=True):
                pipe.xadd(results, {"id": message_id, "record": line})
            pipe.xack(stream, group, *(message_id for message_id, _ in entries))
            await pipe.execute()
    await client.aclose()


if __name__ == "__main__":
    gc.freeze()
    run(consume(*sys.argv[1:5]))
