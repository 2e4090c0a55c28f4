"""The arbiter actor: today's :class:`~shardflow.batch.arbiter.Arbiter`, named, on the
driver's node, holding no CPU slot, so limits and rate limits hold across every node.

Shard actors send it the acquire and release batches their gate collects per loop turn; it
pushes grants straight back to the shard actor (an actor-to-actor call, the driver is not in
the way). The driver tells it when a shard is lost, and its slots are released at once.

Shards lease permits (:mod:`~shardflow.backends.ray.leases`): a permit is a slot granted
once and reused by the shard's steps. So that a shard holding many cannot starve another,
the arbiter keeps a book of each shard's permits per set of limits and, when a shard waits
while holding less than its fair share (the limit split evenly between the shards that
want it), recalls the excess from the shards holding more.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import orjson

from shardflow.batch.arbiter import Arbiter

Key = tuple[str, ...]


class LimitsReport:
    """The arbiter actor's last report, fetched when the pool closes (``report()`` is
    what the summary reads, as from the process backend's arbiter)."""

    def __init__(self) -> None:
        self.last: dict[str, Any] = {}

    def report(self) -> dict[str, Any]:
        return self.last


class _Shard:
    """A shard actor as the arbiter's grant target (the arbiter keys holders by identity),
    with its leased permits: held and asked-for ids, and how many were recalled."""

    __slots__ = ("asked", "handle", "held", "key", "recalled")

    def __init__(self, key: str, handle: Any) -> None:
        self.key = key
        self.handle = handle
        self.held: defaultdict[Key, set[int]] = defaultdict(set)
        self.asked: defaultdict[Key, set[int]] = defaultdict(set)
        self.recalled: defaultdict[Key, int] = defaultdict(int)


class ArbiterActor:
    """Created by the pool with ``ray.remote(ArbiterActor).options(...)``; async, so the
    arbiter's timers and per-turn grant batching run on the actor's loop."""

    def __init__(self, limits: dict[str, int], rate_limits: dict[str, str]) -> None:
        self._arbiter = Arbiter(limits, rate_limits, self._push)
        self._limits = limits
        self._shards: dict[str, _Shard] = {}
        self._key_of: dict[tuple[str, int], Key] = {}
        self._balance_scheduled = False

    async def register(self, key: str, handle: Any) -> None:
        self._shards[key] = _Shard(key, handle)

    async def acquire(self, key: str, payload: bytes) -> None:
        shard = self._shards.get(key)
        if shard is None:
            return
        for rid, names, _ in orjson.loads(payload):
            if rid < 0:  # a lease permit
                limits = tuple(names)
                shard.asked[limits].add(rid)
                self._key_of[(key, rid)] = limits
        self._arbiter.on_acquire(shard, payload)
        if not self._balance_scheduled:
            self._balance_scheduled = True
            asyncio.get_running_loop().call_soon(self._balance)

    async def release(self, key: str, payload: bytes) -> None:
        shard = self._shards.get(key)
        if shard is None:
            return
        for rid in orjson.loads(payload):
            limits = self._key_of.pop((key, rid), None)
            if limits is not None:
                if rid in shard.held[limits]:
                    shard.held[limits].discard(rid)
                    shard.recalled[limits] = max(0, shard.recalled[limits] - 1)
                shard.asked[limits].discard(rid)
        self._arbiter.on_release(shard, payload)

    async def shard_gone(self, key: str) -> None:
        """Release every slot the lost shard held; requests it sent later are ignored."""
        shard = self._shards.pop(key, None)
        if shard is not None:
            self._arbiter.worker_gone(shard)
            for rid in [rid for k, rid in self._key_of if k == key]:
                del self._key_of[(key, rid)]

    async def report(self) -> dict[str, Any]:
        return self._arbiter.report()

    def _push(self, shard: _Shard, rids: list[int]) -> None:
        for rid in rids:
            limits = self._key_of.get((shard.key, rid))
            if limits is not None:
                shard.asked[limits].discard(rid)
                shard.held[limits].add(rid)
        shard.handle.grant.remote(rids)

    def _balance(self) -> None:
        """Recall permits from shards above their fair share while another shard waits
        below it."""
        self._balance_scheduled = False
        shards = list(self._shards.values())
        for limits in {k for s in shards for k in s.asked if s.asked[k]}:
            wanting = [s for s in shards if s.held.get(limits) or s.asked.get(limits)]
            size = min(self._limits.get(name, 1) for name in limits)
            fair = max(1, size // len(wanting))
            if not any(s.asked.get(limits) and len(s.held[limits]) < fair for s in wanting):
                continue
            for shard in wanting:
                excess = len(shard.held[limits]) - fair - shard.recalled[limits]
                if excess > 0:
                    shard.recalled[limits] += excess
                    shard.handle.recall.remote(list(limits), excess)
