"""InProcessPool: a pool whose one shard runs on the caller's event loop -- a test double,
as httpx's ``MockTransport`` is, so that what sits on a pool (the run core, the consumer, the
executor) is tested without starting processes.

It speaks the pool's listener protocol exactly as :class:`~shardflow.batch.pool.WorkerPool`
does (results in batches, a settle after each, parked snapshots before their ``waiting``
results, pre-answered jobs in their turn), through the same :class:`PoolBase`; named limits
and rate limits hold through a :class:`~shardflow.limits.local.LocalGate`. It has no crash
recovery to test: nothing can crash but the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from shardflow._clock import LoopClock
from shardflow.batch.config import RunConfig
from shardflow.batch.jobs import Feed, Job
from shardflow.batch.listener import ResultListener
from shardflow.batch.pool_base import PoolBase
from shardflow.batch.spec import WorkerSpec
from shardflow.engine.rows import JobRow
from shardflow.engine.shard import ShardOutput, ShardRunner
from shardflow.limits.local import LocalGate
from shardflow.model.loader import load_workflow


@dataclass(eq=False)
class _Shard:
    runner: ShardRunner | None = None
    inflight: dict[int, Job] = field(default_factory=dict)
    exclusive: bool = False


class InProcessPool(PoolBase[_Shard]):
    """One in-process shard of ``spec.target``, ``spec.max_in_flight`` jobs at a time."""

    def __init__(self, config: RunConfig, spec: WorkerSpec, feed: Feed, listener: ResultListener,
                 *, hard_timeout: float, scratch_dir: Path | None = None) -> None:
        super().__init__(feed, listener, 1, max_crashes=1, hard_timeout=hard_timeout)
        self.spec = spec
        self.step_stats: dict[tuple[int, int], dict[str, list[float]]] = {}
        self.cpu_seconds: dict[tuple[int, int], float] = {}
        self.failures: dict[tuple[int, int], dict[str, dict[str, int]]] = {}
        self.restarts = 0
        self.start_failures = 0
        self.arbiter = None

    async def start(self) -> None:
        gate = (LocalGate(self.spec.limits, self.spec.rate_limits, LoopClock())
                if self.spec.limits or self.spec.rate_limits else None)
        shard = _Shard()
        shard.runner = ShardRunner(load_workflow(self.spec.target), gate=gate,
                                   on_output=lambda out: self._output(shard, out))
        self._members[0] = shard
        self.dispatch()

    async def close(self, *, kill: bool = False) -> None:
        self._closing = True
        shard = self._members[0]
        if shard is None or shard.runner is None:
            return
        if kill:
            shard.runner.cancel()
        await shard.runner.drain()
        self.step_stats[(0, 0)] = shard.runner.step_stats()
        self.failures[(0, 0)] = shard.runner.failures()

    def worker_pids(self) -> list[int]:
        return []

    def _usable(self, member: _Shard) -> bool:
        return member.runner is not None

    def _fill(self, members: Sequence[_Shard]) -> None:
        for shard in members:
            room = self.spec.max_in_flight - len(shard.inflight)
            if room > 0 and not self._stopped():
                jobs = self.feed.take(room)
                if jobs:
                    self._send(shard, jobs)

    def _send(self, member: _Shard, jobs: list[Job]) -> None:
        assert member.runner is not None
        header: list[JobRow] = []
        lines = []
        for job in jobs:
            if job.answer is not None:
                status, line = job.answer
                self._deliver([job], [(job.seq, status, 0.0, len(line))], [line])
                self._settle()
                continue
            member.inflight[job.seq] = job
            header.append((job.seq, job.id, job.attempt, job.kind, len(job.line)))
            lines.append(job.line)
        if header:
            member.runner.submit(header, lines)

    def _output(self, shard: _Shard, out: ShardOutput) -> None:
        if out.events:
            self._events(shard.inflight, [row[0] for row in out.event_rows], out.events)
        if out.snapshots:
            parked = [(shard.inflight[seq], blob)
                      for (seq, _), blob in zip(out.parked_rows, out.snapshots, strict=True)
                      if seq in shard.inflight]
            if parked:
                self._tell(self.listener.on_parked, parked)
        self._results(shard, out.rows, out.lines)
