"""The arbiter actor: today's :class:`~shardflow.batch.arbiter.Arbiter`, named, on the
driver's node, holding no CPU slot, so limits and rate limits hold across every node.

Shard actors send it the acquire and release batches their gate collects per loop turn; it
pushes grants straight back to the shard actor (an actor-to-actor call, the driver is not in
the way). The driver tells it when a shard is lost, and its slots are released at once.
"""

from __future__ import annotations

from typing import Any

from shardflow.batch.arbiter import Arbiter


class LimitsReport:
    """The arbiter actor's last report, fetched when the pool closes (``report()`` is
    what the summary reads, as from the process backend's arbiter)."""

    def __init__(self) -> None:
        self.last: dict[str, Any] = {}

    def report(self) -> dict[str, Any]:
        return self.last


class _Shard:
    """A shard actor as the arbiter's grant target (the arbiter keys holders by identity)."""

    __slots__ = ("handle", "key")

    def __init__(self, key: str, handle: Any) -> None:
        self.key = key
        self.handle = handle


class ArbiterActor:
    """Created by the pool with ``ray.remote(ArbiterActor).options(...)``; async, so the
    arbiter's timers and per-turn grant batching run on the actor's loop."""

    def __init__(self, limits: dict[str, int], rate_limits: dict[str, str]) -> None:
        self._arbiter = Arbiter(limits, rate_limits, _push)
        self._shards: dict[str, _Shard] = {}

    async def register(self, key: str, handle: Any) -> None:
        self._shards[key] = _Shard(key, handle)

    async def acquire(self, key: str, payload: bytes) -> None:
        shard = self._shards.get(key)
        if shard is not None:
            self._arbiter.on_acquire(shard, payload)

    async def release(self, key: str, payload: bytes) -> None:
        shard = self._shards.get(key)
        if shard is not None:
            self._arbiter.on_release(shard, payload)

    async def shard_gone(self, key: str) -> None:
        """Release every slot the lost shard held; requests it sent later are ignored."""
        shard = self._shards.pop(key, None)
        if shard is not None:
            self._arbiter.worker_gone(shard)

    async def report(self) -> dict[str, Any]:
        return self._arbiter.report()


def _push(shard: _Shard, rids: list[int]) -> None:
    shard.handle.grant.remote(rids)
