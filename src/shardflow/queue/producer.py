"""Putting messages on a stream: each one a field ``data`` holding one JSON object.

    ids = await enqueue(redis.asyncio.Redis.from_url(url), "orders", [{"id": 1, ...}, ...])

``shardflow enqueue`` does the same for a JSONL file; a line that is not a JSON object is
reported (file and line) and not enqueued, and the others are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson
import redis.asyncio as aioredis

_PIPELINE = 1000
"""Messages per round trip."""


async def enqueue(client: aioredis.Redis, stream: str,
                  records: Iterable[Mapping[str, Any] | bytes], *,
                  maxlen: int | None = None) -> list[str]:
    """Add one message per record (a mapping, or the bytes of one JSON object, sent as they
    are); return their message ids in order. ``maxlen`` trims the stream approximately."""
    ids: list[str] = []
    batch: list[bytes] = []

    async def send() -> None:
        async with client.pipeline(transaction=False) as pipe:
            for data in batch:
                pipe.xadd(stream, {"data": data}, maxlen=maxlen, approximate=True)
            ids.extend(i.decode() if isinstance(i, bytes) else str(i) for i in await pipe.execute())
        batch.clear()

    for record in records:
        batch.append(record if isinstance(record, bytes) else orjson.dumps(record))
        if len(batch) >= _PIPELINE:
            await send()
    if batch:
        await send()
    return ids
