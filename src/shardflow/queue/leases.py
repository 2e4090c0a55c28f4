"""Named limits and rate limits shared by every consumer of a group, kept in Redis.

A step's slot of a limit is a *lease*: a member of the limit's sorted set whose score is when
it expires. The holder renews its leases every third of their lifetime; a consumer that dies
(SIGKILL, a lost machine) stops renewing, and its slots come back when its leases expire, at
most ``lease_seconds`` later. Taking the slots of several limits is all-or-nothing, in one
script. Rate limits are one GCRA schedule per name in Redis, booked on Redis's clock.

This is the pool's arbiter (the workers' ``ACQUIRE`` and ``RELEASE`` frames come here), so the
worker side is the same as for ``shardflow run``. A request that finds a limit full waits
until a slot is released in this consumer or for a short poll interval, whichever comes
first: a slot released by another consumer is noticed within ``_POLL`` seconds. Waiters of
different consumers are not served in arrival order (FIFO holds within one consumer only).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
from collections.abc import Mapping
from typing import Any

import orjson

from shardflow.batch.arbiter import Arbiter, GrantSender
from shardflow.limits.rates import parse_rate
from shardflow.queue import scripts
from shardflow.queue.broker import Broker
from shardflow.queue.settings import ConsumerSettings

_POLL = 0.05
_log = logging.getLogger("shardflow")
_Key = tuple[int, int]


class SharedLimits(Arbiter):
    """An :class:`Arbiter` whose slots and rate schedules live in Redis."""

    def __init__(self, limits: Mapping[str, int], rate_limits: Mapping[str, str],
                 send: GrantSender, broker: Broker, settings: ConsumerSettings) -> None:
        super().__init__(limits, rate_limits, send)
        self._broker = broker
        self._settings = settings
        self._sizes = dict(limits)
        self._rate_args: dict[str, tuple[float, float]] = {}
        for name, text in rate_limits.items():
            interval = 1000.0 / parse_rate(name, text).per_second
            self._rate_args[name] = (interval, (parse_rate(name, text).burst - 1) * interval)
        client = broker.client
        self._acquire_script = client.register_script(scripts.ACQUIRE_LEASES)
        self._renew_script = client.register_script(scripts.RENEW_LEASES)
        self._release_script = client.register_script(scripts.RELEASE_LEASES)
        self._reserve_script = client.register_script(scripts.RESERVE_START)
        self._ttl_ms = int(settings.lease_seconds * 1000)
        self._numbers = itertools.count()
        self._waiting: dict[_Key, asyncio.Task[None]] = {}
        self._leases: dict[_Key, tuple[list[str], str]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._freed = asyncio.Event()
        self._renewer: asyncio.Task[None] | None = None
        self.granted = 0

    # -- the workers' requests --------------------------------------------------------------
    def on_acquire(self, worker: Any, payload: bytes) -> None:
        loop = asyncio.get_running_loop()
        for rid, names, rate in orjson.loads(payload):
            key = (id(worker), rid)
            self._waiting[key] = loop.create_task(self._acquire(worker, rid, names, rate))

    async def _acquire(self, worker: Any, rid: int, names: list[str], rate: str | None) -> None:
        key = (id(worker), rid)
        if names:
            keys = [self._settings.limit_key(name) for name in names]
            lease = f"{self._settings.consumer}:{next(self._numbers)}"
            args: list[str | int] = [lease, self._ttl_ms, *(self._sizes[name] for name in names)]
            take = functools.partial(self._acquire_script, keys, args)
            while not await self._broker.call(take):
                self._freed.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(_POLL):
                        await self._freed.wait()
            self._leases[key] = (keys, lease)
            if self._renewer is None:
                self._renewer = asyncio.get_running_loop().create_task(self._renew())
        if rate is not None:
            interval, tolerance = self._rate_args[rate]
            delay = float(await self._broker.call(
                lambda: self._reserve_script([self._settings.rate_key(rate)], [interval, tolerance])))
            if delay > 0:
                await asyncio.sleep(delay / 1000.0)
        self._waiting.pop(key, None)
        self.granted += 1
        self._queue(worker, rid)

    def on_release(self, worker: Any, payload: bytes) -> None:
        for rid in orjson.loads(payload):
            self._drop((id(worker), rid), 0.0)

    def _drop(self, key: _Key, now: float) -> None:
        waiting = self._waiting.pop(key, None)
        if waiting is not None:
            waiting.cancel()
        held = self._leases.pop(key, None)
        if held is not None:
            keys, lease = held
            self._spawn(self._broker.call(lambda: self._release_script(keys, [lease] * len(keys))))
        self._freed.set()

    def worker_gone(self, worker: Any) -> None:
        """A dead worker's leases are given back now, not when they expire."""
        for key in [k for k in (*self._waiting, *self._leases) if k[0] == id(worker)]:
            self._drop(key, 0.0)
        self._outbox.pop(id(worker), None)

    def _spawn(self, call: Any) -> None:
        task = asyncio.get_running_loop().create_task(call)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _renew(self) -> None:
        """Keep every held lease alive (one script call for all of them)."""
        while True:
            await asyncio.sleep(self._settings.lease_seconds / 3)
            held = list(self._leases.values())
            keys = [key for lease_keys, _ in held for key in lease_keys]
            leases = [lease for lease_keys, lease in held for _ in lease_keys]
            if keys:
                await self._broker.call(functools.partial(self._renew_script, keys,
                                                          [self._ttl_ms, *leases]))

    async def close(self) -> None:
        """Stop waiting and renewing, and give every held slot back."""
        for task in [*self._waiting.values(), *([self._renewer] if self._renewer else [])]:
            task.cancel()
        for key in list(self._leases):
            self._drop(key, 0.0)
        if self._background:
            await asyncio.wait(set(self._background), timeout=self._settings.grace_seconds)

    def report(self) -> dict[str, Any]:
        return {"limits": {n: {"size": s, "shared": "redis"} for n, s in sorted(self._sizes.items())},
                "rate_limits": {n: {"shared": "redis"} for n in sorted(self._rate_args)},
                "granted": self.granted}
