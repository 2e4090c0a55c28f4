"""RayPool: the batch executor's pool with shard actors on a Ray cluster instead of processes.

It has :class:`~shardflow.batch.pool.WorkerPool`'s interface and rules, so the coordinator,
feed, journal, output, ``--ordered``, resume and summary are the same code for both
backends. What differs:

* each shard is an async actor (one CPU slot) hosting the same shard runner; it gets batches
  of at most ``batch_size`` jobs (fewer when results run large: ``batch_bytes`` per call) and
  at most ``calls_in_flight`` calls at a time, and answers each call with its whole output;
* Ray's own task retries are off and a lost actor is not restarted by Ray: the driver sees
  the loss (``ActorDiedError``, ``ActorUnavailableError``), kills what is left of it,
  releases its limit slots, applies :func:`~shardflow.batch.crash_policy.decide` to its jobs in
  flight (suspects alone, ``WorkerLost`` after ``max_crashes``) and starts a replacement.
  Ray retrying a batch itself would re-run a poison instance with its neighbours;
* a hard timeout is reported by the actor's watchdog through a call the driver keeps
  pending (:meth:`ShardActor.watch`), and the driver kills the actor;
* limits and rate limits go through one named arbiter actor on the driver's node.

A job leaves a shard's in-flight table only when its call's output has been received, so a
call that fails loses exactly the jobs still in that table: every id is answered once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import ray
from ray.exceptions import RayError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from shardflow.backends.ray.arbiter_actor import ArbiterActor, LimitsReport
from shardflow.backends.ray.cluster import Cluster, actor_sys_path, actor_target, connect
from shardflow.backends.ray.shard import RayShard
from shardflow.backends.ray.shard_actor import WATCH_GROUP, ShardActor
from shardflow.backends.ray.wire import jobs_payload, split_output
from shardflow.batch.config import RunConfig
from shardflow.batch.crash_policy import Culprit
from shardflow.batch.dispatch import fill
from shardflow.batch.jobs import Feed, Job
from shardflow.batch.listener import ResultListener
from shardflow.batch.pool_base import PoolBase
from shardflow.batch.spec import WorkerSpec
from shardflow.engine.rows import ResultRow
from shardflow.errors import WorkerStartError

_STATS_TIMEOUT = 10.0
_ACTOR_OPTIONS: dict[str, Any] = {"num_cpus": 1, "max_restarts": 0, "max_task_retries": 0,
                                  "concurrency_groups": {WATCH_GROUP: 1}}
_SHARD_ACTOR: Any = ray.remote(**_ACTOR_OPTIONS)(ShardActor)
"""One CPU slot each; Ray neither restarts it nor retries its calls (the driver re-sends
lost batches with the poison rules, and starts a replacement)."""


class RayPool(PoolBase[RayShard]):
    """Runs jobs from a :class:`Feed` on ``config.workers`` shard actors."""

    def __init__(self, spec: WorkerSpec, config: RunConfig, feed: Feed, listener: ResultListener,
                 *, hard_timeout: float | None, max_crashes: int = 3,
                 start_attempts: int = 5) -> None:
        super().__init__(feed, listener, max(1, config.workers), max_crashes=max_crashes,
                         hard_timeout=hard_timeout)
        self.spec = replace(spec, hard_timeout=hard_timeout)
        self.size = max(1, config.workers)
        self.settings = config.ray
        self.batch_size = config.batch_size or config.ray.batch_size
        self.startup_timeout = config.startup_timeout
        self.start_attempts = max(1, start_attempts)
        self.arbiter = LimitsReport() if spec.limits or spec.rate_limits else None
        self.step_stats: dict[tuple[int, int], dict[str, list[float]]] = {}
        self.cpu_seconds: dict[tuple[int, int], float] = {}
        self.failures: dict[tuple[int, int], dict[str, dict[str, int]]] = {}
        self.restarts = 0
        self.start_failures = 0
        self.startup_seconds = 0.0
        """From connecting to Ray to every shard actor ready (for the benchmarks)."""
        self._incarnation = 0
        self._cluster: Cluster | None = None
        self._arbiter_actor: Any = None
        self._actor_spec: dict[str, Any] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._started = False

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect to Ray (or start it), start every shard actor, wait until each is ready."""
        began = time.monotonic()
        cluster = self._cluster = await connect(self.settings, self.spec.target, self.size)
        target = actor_target(cluster, self.spec.target)
        self._actor_spec = {**replace(self.spec, target=target, watchdog_file="").to_dict(),
                            "sys_path": actor_sys_path(cluster)}
        if self.arbiter is not None:
            node = ray.get_runtime_context().get_node_id()
            self._arbiter_actor = ray.remote(ArbiterActor).options(
                name=f"shardflow-arbiter-{uuid.uuid4().hex}", num_cpus=0, max_restarts=0,
                scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False),
            ).remote(dict(self.spec.limits), dict(self.spec.rate_limits))
        await self._start_all()
        self.startup_seconds = time.monotonic() - began
        self._started = True
        self.dispatch()

    async def _start(self, slot: int) -> None:
        """Bring up a ready shard actor in ``slot``, replacing ones that die while starting."""
        failures = 0
        while not self._closing:
            shard = self._spawn(slot)
            try:
                async with asyncio.timeout(self.startup_timeout):
                    info = await shard.actor.ready.remote()
            except TimeoutError:
                self._kill(shard)
                raise WorkerStartError(self.spec.target, (
                    f"a shard actor was not ready {self.startup_timeout:g} s after it was created "
                    "(has the cluster a free CPU for it? does importing the workflow hang on a "
                    "node? see --startup-timeout)")) from None
            except RayError as exc:
                self._kill(shard)
                failures += 1
                self.start_failures += 1
                if failures >= self.start_attempts:
                    raise WorkerStartError(self.spec.target, f"{failures} shard actors in a row "
                                           f"died during start-up (the last: {exc})") from None
                continue
            if "error" in info:
                self._kill(shard)
                raise WorkerStartError(self.spec.target, f"on Ray node {info['node']}: {info['error']}")
            shard.pid = info["pid"]
            shard.running = True
            if self.hard_timeout is not None:
                self._spawn_task(self._watch(shard))
            if self._started:  # a replacement: put it to work at once
                self.dispatch()
            return

    def _spawn(self, slot: int) -> RayShard:
        self._incarnation += 1
        key = f"{slot}-{self._incarnation}"
        actor = _SHARD_ACTOR.remote(self._actor_spec, key, self._arbiter_actor)
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

    async def close(self, *, kill: bool = False) -> None:
        """Stop the shards: after their calls end (or at once, with ``kill``), collect their
        step statistics and the limits report, then end the actors (and a Ray we started)."""
        self._closing = True
        kill = kill or self._fatal is not None
        live = [s for s in self._members if s and s.running and not s.dead]
        if not kill:
            with contextlib.suppress(TimeoutError, RayError):
                async with asyncio.timeout(_STATS_TIMEOUT):
                    while any(s.calls for s in live):
                        await asyncio.wait(set(self._tasks), return_when=asyncio.FIRST_COMPLETED)
                    await self._collect(live)
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks))
        for shard in self._members:
            if shard is not None:
                self._kill(shard)
        if self._arbiter_actor is not None:
            with contextlib.suppress(RayError):
                ray.kill(self._arbiter_actor)
        if self._cluster is not None:
            await self._cluster.shutdown()

    async def _collect(self, live: list[RayShard]) -> None:
        for shard, stats in zip(live, await asyncio.gather(*(s.actor.stats.remote() for s in live)),
                                strict=True):
            incarnation = int(shard.key.partition("-")[2])
            self.step_stats[(shard.slot, incarnation)] = stats["steps"]
            self.cpu_seconds[(shard.slot, incarnation)] = stats["cpu"]
            self.failures[(shard.slot, incarnation)] = stats["failures"]
        if self.arbiter is not None and self._arbiter_actor is not None:
            self.arbiter.last = await self._arbiter_actor.report.remote()

    # -- sending ------------------------------------------------------------------------------
    def _usable(self, member: RayShard) -> bool:
        return member.running and not member.dead

    def _fill(self, members: Sequence[RayShard]) -> None:
        settings = self.settings
        fill(self.feed, members, self.spec.max_in_flight, self.batch_size, self._send,
             batch_of=lambda shard: shard.batch_limit(self.batch_size, settings.batch_bytes),
             busy=lambda shard: shard.calls >= settings.calls_in_flight, stopped=self._stopped)

    def _send(self, shard: RayShard, jobs: list[Job]) -> None:
        answered = [job for job in jobs if job.answer is not None]
        runnable = [job for job in jobs if job.answer is None]
        if runnable:
            for job in runnable:
                shard.inflight[job.seq] = job
            shard.calls += 1
            self._spawn_task(self._call(shard, shard.actor.run.remote(jobs_payload(runnable))))
        if answered:
            lines = [job.answer[1] for job in answered if job.answer is not None]
            rows: list[ResultRow] = [(job.seq, job.answer[0], 0.0, len(job.answer[1]))
                                      for job in answered if job.answer is not None]
            self._deliver(answered, rows, lines)
            self._settle()

    def _spawn_task(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- receiving ----------------------------------------------------------------------------
    async def _call(self, shard: RayShard, ref: Any) -> None:
        try:
            data = await ref
        except RayError:
            self._lost(shard)
            return
        finally:
            shard.calls -= 1
        rows, lines, parked_rows, snapshots = split_output(data)
        shard.saw_results(sum(row[-1] for row in rows), len(rows))
        inflight = shard.inflight
        if snapshots:  # stored before their ``waiting`` results are journalled
            parked = [(inflight[seq], blob) for (seq, _), blob in
                      zip(parked_rows, snapshots, strict=True) if seq in inflight]
            if parked:
                self._tell(self.listener.on_parked, parked)
        self._results(shard, rows, lines)

    def _lost(self, shard: RayShard) -> None:
        """The shard is gone: recover its jobs in flight and start a replacement."""
        if shard.dead:
            return
        shard.dead = True
        self._kill(shard)
        if self._arbiter_actor is not None:
            self._spawn_task(self._release_when_dead(shard))
        if self._closing or self._fatal is not None or not shard.running:
            return
        self._recover(shard, shard.culprit)
        self.dispatch()
        self.restarts += 1
        self._spawn_task(self._replace(shard.slot))

    async def _replace(self, slot: int) -> None:
        try:
            await self._start(slot)
        except Exception as exc:
            self._fail(exc)

    async def _release_when_dead(self, shard: RayShard) -> None:
        """Give the shard's limit slots back once the actor is gone, not when the driver
        asked for its death: a step blocking its loop may still be inside a limited call,
        and granting that slot meanwhile would exceed the limit. A call on the killed actor
        fails once Ray knows it is dead (30 s at most, then the slots go back anyway)."""
        with contextlib.suppress(RayError, TimeoutError):
            await asyncio.wait_for(shard.actor.stats.remote(), 30.0)
        if self._arbiter_actor is not None:
            self._arbiter_actor.shard_gone.remote(shard.key)

    def _kill(self, shard: RayShard) -> None:
        shard.dead = True
        with contextlib.suppress(RayError, ValueError):
            ray.kill(shard.actor, no_restart=True)
