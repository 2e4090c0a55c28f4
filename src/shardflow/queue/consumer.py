"""Consumer: one member of a Redis Streams consumer group, with a worker pool of its own.

    consumer = Consumer("myapp.flows:workflow", ConsumerSettings("redis://host", "orders"))
    outcome = await consumer.run()          # until consumer.stop() (SIGTERM in the CLI)

Its parts share one event loop:

* the reader takes only as many messages as there is room for in flight (``XREADGROUP``;
  first this consumer's own pending ones, then new ones) and, every quarter of
  ``claim_idle`` (at least once a second), messages other consumers left unacknowledged for
  ``claim_idle`` seconds (``XAUTOCLAIM``). A message delivered more than ``max_deliveries``
  times goes to the dead-letter stream instead;
* the pool runs the jobs; the run core (:class:`~shardflow.batch.run_core.RunCore`, shared
  with ``shardflow run`` and ``BatchExecutor``) hands their results to this object, its
  :class:`~shardflow.batch.run_core.ResultSink`;
* the keeper re-claims this consumer's own in-flight messages every third of ``claim_idle``
  (``XCLAIM ... JUSTID``, which resets their idle time without counting a delivery), so a
  step that runs longer than ``claim_idle`` is not taken over while its consumer is alive;
* the writer writes each result, its events (with ``events_stream``), its dedup marker and
  its ``XACK`` in one Lua script (:mod:`shardflow.queue.scripts`), batch by batch, retrying
  while Redis is away. Workers send an instance's events just before its result; they are
  held here until then, the last run's replacing an earlier one's (a job run again after its
  worker died).

A message counts as in flight from the moment it is read until its acknowledgement is
written; only then is there room for another.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from redis.exceptions import ResponseError

from shardflow.batch.config import RunConfig
from shardflow.batch.coordinator import default_hard_timeout
from shardflow.batch.jobs import Feed, Job
from shardflow.batch.listener import ResultListener
from shardflow.batch.pool import WorkerPool
from shardflow.batch.run_core import RunCore
from shardflow.batch.spec import WorkerSpec
from shardflow.batch.workerproc import WorkerProcess
from shardflow.engine.rows import ResultRow
from shardflow.errors import ConfigError
from shardflow.metrics.registry import Metrics
from shardflow.model.loader import load_workflow
from shardflow.model.plan import check_limits, iter_steps
from shardflow.model.waits import may_park
from shardflow.queue.broker import Broker
from shardflow.queue.leases import SharedLimits
from shardflow.queue.messages import job_of
from shardflow.queue.settings import ConsumerSettings
from shardflow.queue.writer import ConsumeOutcome, ResultWriter

_log = logging.getLogger("shardflow")


class Consumer:
    """Runs the messages of ``settings.stream`` with workflow ``target``; see the module doc."""

    def __init__(self, target: str, settings: ConsumerSettings, config: RunConfig | None = None,
                 *, metrics: Metrics | None = None, scratch_dir: Path | None = None) -> None:
        self.target = target
        self.settings = settings
        self.config = config or RunConfig()
        self.metrics = metrics or Metrics()
        self.scratch_dir = scratch_dir
        self.definition = load_workflow(target)
        self.outcome = ConsumeOutcome()
        self.broker: Broker | None = None
        self.pool: WorkerPool | None = None
        self._seq = itertools.count()
        self._message_of: dict[int, str] = {}
        self._events_of: dict[int, bytes] = {}
        """A job's events (JSONL), from their arrival to its result's."""
        self._running: set[str] = set()
        """Ids of the messages read and not yet acknowledged."""
        self._writer: ResultWriter | None = None
        self._in_flight = 0
        self._capacity = self.config.workers * self.config.max_in_flight
        self._room = asyncio.Event()
        self._stop = asyncio.Event()
        self._stop_now = asyncio.Event()
        self._fatal: BaseException | None = None
        self._claim_cursor = "0-0"
        self._claimed_at = float("-inf")

    # -- checks before anything starts ------------------------------------------------------
    def check(self) -> None:
        """Refuse what ``consume`` cannot do, in one line each (nothing has started yet)."""
        definition = self.definition
        definition.check()
        check_limits(definition.plan, self.config.limits, self.config.rate_limits)
        if self.settings.events_maxlen is not None and self.settings.events_stream is None:
            raise ConfigError("events_maxlen", "caps the events stream, which is not given "
                              "(--events-stream, events_stream)")
        if self.config.backend != "process":
            raise ConfigError("backend", "consume runs its own worker processes; "
                              f"backend {self.config.backend!r} is not supported")
        parking = [step.step_name for node in definition.steps.values()
                   for step in iter_steps(node) if may_park(step)]
        if parking:
            raise ConfigError("target", f"workflow {definition.name!r} has human steps, webhooks "
                              f"or long timers ({', '.join(parking)}); consume does not keep "
                              "waiting instances: run it with 'shardflow run', which does")

    @property
    def healthy(self) -> str | None:
        """``None`` while the broker is connected and the workers run, else why not."""
        if self.pool is None or self.broker is None:
            return "starting"
        if self._fatal is not None:
            return f"stopped: {self._fatal}"
        if not self.broker.connected:
            return f"redis at {self.settings.redis_url} is unreachable"
        if self.pool.error is not None:
            return f"workers stopped: {self.pool.error}"
        return None

    def stop(self) -> None:
        """Stop reading; let what is in flight finish and be acknowledged (``run`` returns).
        A second call stops at once: what is in flight is delivered again elsewhere."""
        if self._stop.is_set():
            self._stop_now.set()
            return
        self.outcome.interrupted = True
        self._stop.set()
        _log.warning("stopping: reading no more; letting %d messages in flight finish (up to "
                     "%g s; stop again to stop now)", self._in_flight, self.settings.grace_seconds)

    # -- the run ----------------------------------------------------------------------------
    async def run(self) -> ConsumeOutcome:
        self.check()
        settings, config = self.settings, self.config
        broker = self.broker = Broker(settings.redis_url, on_reconnect=self.metrics.reconnects.inc)
        spec = WorkerSpec(target=self.target, max_in_flight=config.max_in_flight,
                          limits=config.limits, rate_limits=config.rate_limits)
        feed = Feed()
        core = RunCore(config, spec, feed, self, observer=self.metrics,
                       hard_timeout=config.hard_timeout or default_hard_timeout(self.definition),
                       scratch_dir=self.scratch_dir, pool_factory=self._make_pool,
                       on_events=self._hold_events if settings.events_stream else None)
        pool = self.pool
        assert pool is not None
        writer = self._writer = ResultWriter(broker, settings, self.metrics, self.outcome,
                                             self._acknowledged)
        tasks: list[asyncio.Task[None]] = []
        killed = False
        try:
            await self._ensure_group()
            await core.start()
            _log.info("consumer %s of group %s reads stream %s (%d workers, %d in flight)",
                      settings.consumer, settings.group, settings.stream, pool.size, self._capacity)
            loop = asyncio.get_running_loop()
            tasks = [loop.create_task(self._read_loop()), loop.create_task(writer.run()),
                     loop.create_task(self._keep_claimed())]
            await self._stop.wait()
            tasks[0].cancel()
            feed.close()
            killed = not await self._drain(pool)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await core.close(kill=killed or self._fatal is not None)
            if isinstance(pool.arbiter, SharedLimits):
                await pool.arbiter.close()
            await broker.close()
        self.outcome.unacknowledged = self._in_flight
        if self._fatal is not None:
            raise self._fatal
        return self.outcome

    def _make_pool(self, config: RunConfig, spec: WorkerSpec, feed: Feed, listener: ResultListener,
                   *, hard_timeout: float, scratch_dir: Path | None = None) -> WorkerPool:
        """The process pool, with its limits kept in Redis for the whole group."""
        assert self.broker is not None
        pool = self.pool = WorkerPool(spec, config.workers, feed, listener,
                                      batch_size=config.batch_size, hard_timeout=hard_timeout,
                                      startup_timeout=config.startup_timeout,
                                      scratch_dir=scratch_dir)
        if config.limits or config.rate_limits:
            pool.arbiter = SharedLimits(config.limits, config.rate_limits, WorkerProcess.grant,
                                        self.broker, self.settings)
        return pool

    async def _drain(self, pool: WorkerPool) -> bool:
        """Let in-flight instances finish and their results be written, within the grace
        period and until a second stop; ``False`` if cut short (what is left will be
        delivered again)."""
        loop = asyncio.get_running_loop()
        finished = loop.create_task(self._finish_in_flight(pool))
        now = loop.create_task(self._stop_now.wait())
        try:
            await asyncio.wait([finished, now], timeout=self.settings.grace_seconds,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (finished, now):
                task.cancel()
        if finished.done() and not finished.cancelled():
            finished.result()  # what stopped the pool, if something did
            return True
        _log.warning("stopped before %d messages were acknowledged; they will be delivered again",
                     self._in_flight)
        return False

    async def _finish_in_flight(self, pool: WorkerPool) -> None:
        if self._fatal is None:
            await pool.wait_idle()
        while self._in_flight and self._fatal is None:
            self._room.clear()
            await self._room.wait()

    async def _ensure_group(self) -> None:
        """Create the group (and the stream) if missing, from the stream's start."""
        assert self.broker is not None
        client, s = self.broker.client, self.settings
        try:
            await self.broker.call(lambda: client.xgroup_create(s.stream, s.group, id="0",
                                                                mkstream=True))
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    # -- reading ----------------------------------------------------------------------------
    async def _read_loop(self) -> None:
        assert self.broker is not None
        client, s, call = self.broker.client, self.settings, self.broker.call
        await self._read_own_pending()
        block = 50 if s.burst else 1000
        while True:
            room = self._capacity - self._in_flight
            if room <= 0:
                self._room.clear()
                await self._room.wait()
                continue
            if await self._claim(room):
                continue
            reply: Any = await call(functools.partial(
                client.xreadgroup, s.group, s.consumer, {s.stream: ">"},
                count=min(room, s.read_count), block=block))
            if reply:
                self._admit(reply[0][1], {})
            elif s.burst and not self._in_flight and await self._group_drained():
                _log.info("burst: no new and no pending message left in group %s", s.group)
                self._stop.set()
                return

    async def _read_own_pending(self) -> None:
        """Messages this consumer's name holds from an earlier life (a restart under the
        same ``--consumer``): they run first, as redeliveries."""
        assert self.broker is not None
        client, s = self.broker.client, self.settings
        after = "0"
        while True:
            while self._in_flight >= self._capacity:
                self._room.clear()
                await self._room.wait()
            reply: Any = await self.broker.call(functools.partial(
                client.xreadgroup, s.group, s.consumer, {s.stream: after},
                count=min(self._capacity - self._in_flight, s.read_count)))
            entries = reply[0][1] if reply else []
            if not entries:
                return
            after = _text(entries[-1][0])
            await self._admit_redelivered(entries)

    async def _claim(self, room: int) -> int:
        """Take over messages other consumers left unacknowledged for ``claim_idle``
        seconds, at most every quarter of it; how many were taken."""
        assert self.broker is not None
        s, now = self.settings, time.monotonic()
        if now - self._claimed_at < min(s.claim_idle / 4, 1.0):
            return 0
        self._claimed_at = now
        client = self.broker.client
        reply = await self.broker.call(lambda: client.xautoclaim(
            s.stream, s.group, s.consumer, int(s.claim_idle * 1000), self._claim_cursor,
            count=min(room, s.read_count)))
        self._claim_cursor = _text(reply[0])
        if self._claim_cursor != "0-0":
            self._claimed_at = float("-inf")  # more to scan: come back at once
        deleted = reply[2] if len(reply) > 2 else []
        if deleted:  # trimmed from the stream before anyone ran them: nothing to run
            await self.broker.call(lambda: client.xack(s.stream, s.group, *deleted))
        return await self._admit_redelivered(reply[1])

    async def _admit_redelivered(self, entries: Sequence[Any]) -> int:
        assert self.broker is not None
        live = [e for e in entries if e[1] is not None]
        gone = [e[0] for e in entries if e[1] is None]
        s, client = self.settings, self.broker.client
        if gone:
            await self.broker.call(lambda: client.xack(s.stream, s.group, *gone))
        if not live:
            return 0
        first, last = live[0][0], live[-1][0]
        pending = await self.broker.call(lambda: client.xpending_range(
            s.stream, s.group, min=first, max=last, count=self._capacity + len(live),
            consumername=s.consumer))
        deliveries = {_text(p["message_id"]): int(p["times_delivered"]) for p in pending}
        admitted = self._admit(live, deliveries)
        self.outcome.redeliveries += admitted
        self.metrics.redeliveries.inc(admitted)
        return admitted

    def _admit(self, entries: Sequence[Any], deliveries: dict[str, int]) -> int:
        """Give each message to the pool, or to the dead-letter stream when it has been
        delivered too often; how many were new to this consumer."""
        assert self.pool is not None and self._writer is not None
        writer = self._writer
        stream, limit = self.settings.stream, self.settings.max_deliveries
        submit = self.pool.submit
        admitted = 0
        for raw_id, fields in entries:
            message_id = _text(raw_id)
            if message_id in self._running:
                continue  # ours already (claimed back while it ran): it runs once here
            self._running.add(message_id)
            self._in_flight += 1
            admitted += 1
            times = deliveries.get(message_id, 1)
            if times > limit:
                writer.dead_letter(message_id, fields.get(b"data", b""), times)
                continue
            job = job_of(next(self._seq), message_id, fields, stream)
            self._message_of[job.seq] = message_id
            submit(job)
        return admitted

    async def _group_drained(self) -> bool:
        """No message of the group is pending with any consumer."""
        assert self.broker is not None
        client, s = self.broker.client, self.settings
        summary = await self.broker.call(lambda: client.xpending(s.stream, s.group))
        return not summary["pending"]

    # -- the run core's sink ---------------------------------------------------------------
    def accept(self, jobs: list[Job], rows: list[ResultRow], lines: list[bytes]) -> None:
        assert self._writer is not None
        message_of, events_of = self._message_of.pop, self._events_of.pop
        self._writer.results += [(message_of(job.seq), line, events_of(job.seq, b""))
                                 for job, line in zip(jobs, lines, strict=True)]

    def _hold_events(self, events: list[tuple[Job, bytes]]) -> None:
        for job, blob in events:
            self._events_of[job.seq] = blob

    def release(self) -> None:
        assert self._writer is not None
        self._writer.wake.set()

    def stopped(self, error: BaseException) -> None:
        """The workers cannot go on: stop; what is in flight is delivered again elsewhere."""
        self._fatal = error
        self._stop.set()
        self._room.set()

    def _acknowledged(self, message_ids: list[str]) -> None:
        self._in_flight -= len(message_ids)
        self._running.difference_update(message_ids)
        self._room.set()

    async def _keep_claimed(self) -> None:
        """Reset the idle time of every message this consumer is running."""
        assert self.broker is not None
        client, s = self.broker.client, self.settings
        while True:
            await asyncio.sleep(s.claim_idle / 3)
            running: list[Any] = list(self._running)
            for start in range(0, len(running), 1000):
                await self.broker.call(functools.partial(
                    client.xclaim, s.stream, s.group, s.consumer, 0, running[start:start + 1000],
                    justid=True))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

