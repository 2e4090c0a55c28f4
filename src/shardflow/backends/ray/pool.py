"""RayPool: the batch executor's pool with shard actors on a Ray cluster instead of processes.

It has :class:`~shardflow.batch.pool.WorkerPool`'s interface and rules, so the coordinator,
feed, journal, output, ``--ordered``, resume and summary are the same code for both
backends. What differs:

* each shard is an async actor (one CPU slot) hosting the same shard runner; it gets batches
  of at most ``batch_size`` jobs (fewer when results run large: ``batch_bytes`` per call) and
  at most ``calls_in_flight`` calls at a time, and answers each call with its whole output;
* Ray's own task retries are off and a lost actor is not restarted by Ray (a retried batch
  would re-run a poison instance with its neighbours): the driver kills what is left of it,
  re-runs its jobs in flight as :mod:`~shardflow.backends.ray.losses` says (after a node
  loss as they were; after its process died, in batches with the crash counted and alone
  when lost again; else as suspects: :func:`~shardflow.batch.crash_policy.decide`) and
  starts a replacement;
* a hard timeout is reported by the actor's watchdog through a call the driver keeps
  pending (:meth:`ShardActor.watch`), and the driver kills the actor;
* limits and rate limits go through one named arbiter actor on the driver's node;
* lost capacity is not fatal: the run starts when every shard actor is ready, or a few
  seconds after the first one is, and goes on with the shards it has while the others (and
  replacements of lost ones) wait for a free CPU in the background. The start-up timeout
  applies only while the run has no shard at all, so a run, or a resume, works on a smaller
  cluster than it was started on (:mod:`~shardflow.backends.ray.slots` keeps the slots
  filled).

A job leaves a shard's in-flight table only when its call's output has been received, so a
call that fails loses exactly the jobs still in that table: every id is answered once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import ActorUnavailableError, RayError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from shardflow.backends.ray.arbiter_actor import ArbiterActor, LimitsReport
from shardflow.backends.ray.cluster import actor_sys_path, actor_target, connect
from shardflow.backends.ray.losses import (
    alone_from,
    innocent,
    until_dead,
    verdict_on,
    why_lost,
)
from shardflow.backends.ray.nodes import check_nodes
from shardflow.backends.ray.shard import RayShard
from shardflow.backends.ray.slots import ShardSlots
from shardflow.backends.ray.wire import jobs_payload, split_output
from shardflow.batch.config import RunConfig
from shardflow.batch.dispatch import fill
from shardflow.batch.jobs import Feed, Job
from shardflow.batch.listener import ResultListener
from shardflow.batch.spec import WorkerSpec
from shardflow.engine.rows import ResultRow

_log = logging.getLogger("shardflow")
_STATS_TIMEOUT = 10.0


class RayPool(ShardSlots):
    """Runs jobs from a :class:`Feed` on ``config.workers`` shard actors."""

    def __init__(self, spec: WorkerSpec, config: RunConfig, feed: Feed, listener: ResultListener,
                 *, hard_timeout: float | None, max_crashes: int = 3,
                 start_attempts: int = 5, run_dir: Path | None = None) -> None:
        super().__init__(spec, max(1, config.workers), feed, listener, hard_timeout=hard_timeout,
                         max_crashes=max_crashes, startup_timeout=config.startup_timeout,
                         start_attempts=start_attempts)
        self.settings = config.ray
        self.batch_size = config.batch_size or config.ray.batch_size
        self.arbiter = LimitsReport() if spec.limits or spec.rate_limits else None
        self.step_stats: dict[tuple[int, int], dict[str, list[float]]] = {}
        self.cpu_seconds: dict[tuple[int, int], float] = {}
        self.failures: dict[tuple[int, int], dict[str, dict[str, int]]] = {}
        self.restarts = 0
        self.startup_seconds = 0.0
        """From connecting to Ray to every shard actor ready, or to the first one and
        ``PATIENCE`` seconds (for the benchmarks)."""
        self._run_dir = run_dir
        self._starting: asyncio.Future[None] | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect to Ray (or start it), check the nodes, start the shard actors
        (:meth:`_start_all`). An interrupt while connecting (the feed stopped:
        :meth:`dispatch`) ends the start with no shard and nothing run."""
        self._shardless_since = began = time.monotonic()
        self._starting = asyncio.ensure_future(self._connect_and_start())
        try:
            await asyncio.shield(self._starting)
        except asyncio.CancelledError:
            if not self._starting.cancelled():
                raise  # our caller was cancelled, not the start
        self.startup_seconds = time.monotonic() - began
        self._started = True
        self.dispatch()

    async def _connect_and_start(self) -> None:
        cluster = self._cluster = await connect(self.settings, self.spec.target, self.size,
                                                self._run_dir)
        await check_nodes(self.startup_timeout, same_version=not self.settings.ship_shardflow,
                          env=cluster.env)
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

    def dispatch(self) -> None:
        if not self._started:
            if self.feed.exhausted and self._starting is not None:
                self._starting.cancel()  # interrupted while connecting: stop at once
            return
        super().dispatch()

    async def close(self, *, kill: bool = False) -> None:
        """Stop the shards: after their calls end (or at once, with ``kill``), collect their
        step statistics and the limits report, then end the actors (and a Ray we started)."""
        self._closing = True
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
            await asyncio.wait({self._starting})
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
        return member.running and not member.dead and not member.judging

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

    # -- receiving ----------------------------------------------------------------------------
    async def _call(self, shard: RayShard, ref: Any) -> None:
        try:
            data = await ref
        except RayError as exc:
            self._failed(shard, exc)
            return
        finally:
            shard.calls -= 1
        out = split_output(data)
        shard.saw_results(sum(row[-1] for row in out.rows), len(out.rows))
        inflight = shard.inflight
        if out.events:  # published before their results
            self._events(inflight, [row[0] for row in out.event_rows], out.events)
        if out.snapshots:  # stored before their ``waiting`` results are journalled
            parked = [(inflight[seq], blob) for (seq, _), blob in
                      zip(out.parked_rows, out.snapshots, strict=True) if seq in inflight]
            if parked:
                self._tell(self.listener.on_parked, parked)
        self._results(shard, out.rows, out.lines)

    def _failed(self, shard: RayShard, exc: RayError | None) -> None:
        """A call failed (``exc``; ``None``: answered again after its calls were cut off):
        the actor is lost, or unreachable, a wait for Ray's verdict (:mod:`.losses`)."""
        if shard.dead or shard.judging:
            return
        if isinstance(exc, ActorUnavailableError):
            shard.judging = True
            self._spawn_task(self._judge(shard))
            return
        shard.innocent = innocent(exc)
        shard.alone_from = alone_from(exc)
        alone = 0 if shard.innocent else sum(
            1 for job in shard.inflight.values() if job.crashes + 1 >= shard.alone_from)
        _log.warning("a shard actor was lost (%s); its %d instances in flight run again%s; "
                     "running on %d of %d while a replacement starts", why_lost(exc),
                     len(shard.inflight), f", {alone} of them alone (suspects of a crash)"
                     if alone else "", self._running() - 1, self.size)
        self._waiting.add(shard.slot)  # its replacement says when it is back
        self._lost(shard)

    async def _judge(self, shard: RayShard) -> None:
        verdict = await verdict_on(shard.actor)
        shard.judging = False
        self._failed(shard, verdict)

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
        if not self._running():
            self._shardless_since = time.monotonic()
        if shard.innocent:  # no instance's doing: they all run again, no crash counted
            for job in shard.inflight.values():
                self.feed.requeue(job)
            shard.inflight.clear()
        else:
            self._recover(shard, shard.culprit, shard.alone_from)
        self.dispatch()
        self.restarts += 1
        self._spawn_task(self._replace(shard.slot))

    async def _release_when_dead(self, shard: RayShard) -> None:
        """Its limit slots go back once Ray reports the actor dead (:func:`.until_dead`)."""
        await until_dead(shard.actor)
        if self._arbiter_actor is not None:
            self._arbiter_actor.shard_gone.remote(shard.key)

