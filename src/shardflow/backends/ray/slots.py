"""Keeping a Ray pool's slots filled: shard actors brought up, waited for, replaced, ended.

A slot's actor is created with one CPU slot and neither restarts nor retries (the pool
re-sends a lost actor's jobs itself, by the crash rules). Lost capacity is not fatal: while
the run has other shards, an actor waiting for a free CPU waits in the background (one
warning) and joins when it is ready; the start-up timeout counts only while the run has no
ready shard, and actors dying during start-up are retried with a growing pause.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import replace
from typing import Any

import ray
from ray.exceptions import RayError

from shardflow.backends.ray.cluster import Cluster
from shardflow.backends.ray.shard import RayShard
from shardflow.backends.ray.shard_actor import WATCH_GROUP, ShardActor
from shardflow.batch.crash_policy import Culprit
from shardflow.batch.jobs import Feed
from shardflow.batch.listener import ResultListener
from shardflow.batch.pool_base import PoolBase
from shardflow.batch.spec import WorkerSpec
from shardflow.errors import WorkerStartError

_log = logging.getLogger("shardflow")
PATIENCE = 5.0
"""Seconds between looks at a shard actor still not ready (is the run without shards?)."""
_BACKOFF_LIMIT = 30.0
_ACTOR_OPTIONS: dict[str, Any] = {"num_cpus": 1, "max_restarts": 0, "max_task_retries": 0,
                                  "concurrency_groups": {WATCH_GROUP: 1}}
_SHARD_ACTOR: Any = ray.remote(**_ACTOR_OPTIONS)(ShardActor)
"""One CPU slot each; Ray neither restarts it nor retries its calls (the driver re-sends
lost batches with the poison rules, and starts a replacement)."""


class ShardSlots(PoolBase[RayShard]):
    """The slot table of shard actors; the subclass connects, sends, and says what a
    loss means (:meth:`_lost`)."""

    def __init__(self, spec: WorkerSpec, size: int, feed: Feed, listener: ResultListener, *,
                 hard_timeout: float | None, max_crashes: int, startup_timeout: float,
                 start_attempts: int) -> None:
        super().__init__(feed, listener, size, max_crashes=max_crashes,
                         hard_timeout=hard_timeout)
        self.spec = replace(spec, hard_timeout=hard_timeout)
        self.size = size
        self.startup_timeout = startup_timeout
        self.start_attempts = max(1, start_attempts)
        self.start_failures = 0
        self._shardless_since = 0.0
        """When the run last had no ready shard (the start-up timeout counts from there)."""
        self._waiting: set[int] = set()
        """Slots whose actor waits for a free CPU while the run goes on without it."""
        self._first_ready: asyncio.Future[None] | None = None
        self._all_ready: asyncio.Future[None] | None = None
        self._incarnation = 0
        self._cluster: Cluster | None = None
        self._arbiter_actor: Any = None
        self._actor_spec: dict[str, Any] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._started = False

    def _lost(self, shard: RayShard) -> None:
        """The shard is gone (its watchdog, or a failed call, said so)."""
        raise NotImplementedError

    async def _start_all(self) -> None:
        """Start every slot; return when all are ready, or ``PATIENCE`` seconds after the
        first is (the others join when the cluster has room); raise if none can be."""
        loop = asyncio.get_running_loop()
        first = self._first_ready = loop.create_future()
        everyone = self._all_ready = loop.create_future()
        for slot in range(self.size):
            self._spawn_task(self._replace(slot))
        await first
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(everyone), PATIENCE)

    def _running(self) -> int:
        return sum(1 for s in self._members if s is not None and s.running and not s.dead)

    async def _start(self, slot: int) -> None:
        """Bring up a ready shard actor in ``slot``, replacing ones that die while starting;
        wait for a free CPU as long as the run has other shards."""
        failures = 0
        while not self._closing:
            shard = self._spawn(slot)
            try:
                info = await self._until_ready(shard)
            except TimeoutError:
                self._kill(shard)
                raise WorkerStartError(self.spec.target, (
                    f"no shard actor was ready {self.startup_timeout:g} s after it was created "
                    "(has the cluster a free CPU for it? does importing the workflow hang on a "
                    "node? see --startup-timeout)")) from None
            except RayError as exc:
                self._kill(shard)
                failures += 1
                self.start_failures += 1
                if failures >= self.start_attempts and not self._running():
                    raise WorkerStartError(self.spec.target, f"{failures} shard actors in a row "
                                           f"died during start-up (the last: {exc})") from None
                if self._running():  # others work meanwhile: try again, a little later each time
                    await asyncio.sleep(min(2.0 ** failures, _BACKOFF_LIMIT))
                continue
            if "error" in info:
                self._kill(shard)
                raise WorkerStartError(self.spec.target, f"on Ray node {info['node']}: {info['error']}")
            shard.pid = info["pid"]
            shard.running = True
            if slot in self._waiting:
                self._waiting.discard(slot)
                _log.info("a shard actor is back: running on %d of %d", self._running(), self.size)
            if self.hard_timeout is not None:
                self._spawn_task(self._watch(shard))
            if self._first_ready is not None and not self._first_ready.done():
                self._first_ready.set_result(None)
            if (self._all_ready is not None and not self._all_ready.done()
                    and self._running() == self.size):
                self._all_ready.set_result(None)
            if self._started:  # a replacement or a late starter: put it to work at once
                self.dispatch()
            return

    async def _until_ready(self, shard: RayShard) -> dict[str, Any]:
        """The actor's ``ready()`` answer. Raises ``TimeoutError`` once the run has had no
        ready shard for ``startup_timeout`` seconds; while other shards run, waits on."""
        ready: asyncio.Future[dict[str, Any]] = asyncio.ensure_future(shard.actor.ready.remote())
        try:
            while True:
                done, _ = await asyncio.wait({ready}, timeout=min(PATIENCE, self.startup_timeout))
                if done:
                    return ready.result()
                if self._running():
                    if shard.slot not in self._waiting:
                        self._waiting.add(shard.slot)
                        _log.warning("a shard actor waits for a free CPU on the cluster; running "
                                     "on %d of %d meanwhile", self._running(), self.size)
                elif time.monotonic() - self._shardless_since >= self.startup_timeout:
                    raise TimeoutError
        finally:
            ready.cancel()

    def _spawn(self, slot: int) -> RayShard:
        self._incarnation += 1
        key = f"{slot}-{self._incarnation}"
        env = self._cluster.env if self._cluster is not None else {}
        actor = (_SHARD_ACTOR.options(runtime_env={"env_vars": env}) if env else _SHARD_ACTOR
                 ).remote(self._actor_spec, key, self._arbiter_actor)
        shard = RayShard(slot, key, actor)
        self._members[slot] = shard
        return shard

    async def _watch(self, shard: RayShard) -> None:
        """The shard's watchdog found its loop blocked: note the culprit, end the shard."""
        try:
            report = await shard.actor.watch.remote()
        except RayError:
            return  # it died some other way
        shard.culprit = Culprit.from_report(report)
        self._lost(shard)

    def worker_pids(self) -> list[int]:
        """Process ids of the shard actors (on their nodes)."""
        return [s.pid for s in self._members if s and s.pid is not None and not s.dead]

    def _spawn_task(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _replace(self, slot: int) -> None:
        try:
            await self._start(slot)
        except Exception as exc:
            if self._first_ready is not None and not self._first_ready.done():
                self._first_ready.set_exception(exc)
            else:
                self._fail(exc)

    def _kill(self, shard: RayShard) -> None:
        shard.dead = True
        with contextlib.suppress(RayError, ValueError):
            ray.kill(shard.actor, no_restart=True)
