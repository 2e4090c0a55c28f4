"""The shard actor: the same :class:`~shardflow.engine.shard.ShardRunner` the worker process
hosts, on an async Ray actor's loop.

The host's jobs are the worker process's, minus the socket: limit permits are leased from
the arbiter actor (:mod:`~shardflow.backends.ray.leases`; grants and recalls come back as
calls, :meth:`ShardActor.grant` and :meth:`ShardActor.recall`), and the loop watchdog's
report goes to the driver through :meth:`ShardActor.watch`, a call the driver keeps pending
on a concurrency group of its own (another thread, so it answers while the shard's loop is
blocked). The driver then kills the actor; the watchdog ends the process itself only if
nobody did within a few seconds (a driver gone).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import sys
import time
from typing import Any

import ray

from shardflow.backends.ray.leases import LeasedGate
from shardflow.backends.ray.wire import output_payload, shard_jobs
from shardflow.batch import protocol as p
from shardflow.batch.spec import WorkerSpec
from shardflow.batch.watchdog import LoopWatchdog
from shardflow.engine.shard import ShardRunner
from shardflow.engine.tuning import tune_gc
from shardflow.model.loader import load_workflow

WATCH_GROUP = "watch"
_KILL_GRACE_SECONDS = 5.0
"""How long a blocked actor waits for the driver to kill it before it exits by itself."""


class ShardActor:
    """One shard; created by the pool with ``ray.remote(ShardActor).options(...)``."""

    def __init__(self, spec: dict[str, Any], key: str, arbiter: Any) -> None:
        spec = dict(spec)
        for entry in reversed(spec.pop("sys_path", [])):  # the driver's, on one machine
            if entry not in sys.path and os.path.isdir(entry):
                sys.path.insert(0, entry)
        self._spec = WorkerSpec.from_dict(spec)
        self._key = key
        self._arbiter = arbiter
        self._runner: ShardRunner | None = None
        self._gate: LeasedGate | None = None
        self._blocked: concurrent.futures.Future[dict[str, Any] | None] = concurrent.futures.Future()

    async def ready(self) -> dict[str, Any]:
        """Load the workflow and start serving: ``{"pid"}``, or ``{"error"}`` when the
        workflow does not load here (the same on every actor, so the run stops)."""
        try:
            definition = load_workflow(self._spec.target)
        except BaseException as exc:  # an import that raises SystemExit is a load failure too
            return {"error": f"{type(exc).__name__}: {exc}", "node": _node()}
        gate = None
        if self._arbiter is not None:
            gate = self._gate = LeasedGate(self._to_arbiter)
            # registered before any job runs: the arbiter knows where to push our grants
            await self._arbiter.register.remote(self._key, ray.get_runtime_context().current_actor)
        loop = asyncio.get_running_loop()
        watched = self._spec.hard_timeout is not None
        runner = ShardRunner(definition, gate=gate, watched=watched, events=self._spec.events)
        if self._spec.gc_freeze:
            tune_gc()
        if watched:
            assert self._spec.hard_timeout is not None
            LoopWatchdog(loop, self._spec.hard_timeout, os.devnull,
                         lambda: self._report_blocked(runner, loop)).start()
        self._runner = runner
        return {"pid": os.getpid(), "node": _node()}

    async def run(self, payload: bytes) -> bytes:
        """One batch of jobs (:func:`~shardflow.backends.ray.wire.jobs_payload`) -> its output."""
        assert self._runner is not None, "ready() first"
        return output_payload(await self._runner.run_batch(shard_jobs(payload)))

    async def grant(self, rids: list[int]) -> None:
        """Limit slots granted by the arbiter actor (an actor-to-actor call)."""
        if self._gate is not None:
            self._gate.on_grant(rids)

    async def recall(self, limits: list[str], count: int) -> None:
        """The arbiter wants ``count`` leased permits of ``limits`` back."""
        if self._gate is not None:
            self._gate.on_recall(tuple(limits), count)

    async def stats(self) -> dict[str, Any]:
        runner = self._runner
        return {"steps": runner.step_stats() if runner is not None else {},
                "failures": runner.failures() if runner is not None else {},
                "cpu": time.process_time()}

    @ray.method(concurrency_group=WATCH_GROUP)
    async def watch(self) -> dict[str, Any] | None:
        """Answers once the watchdog finds the loop blocked: the culprit job, if known."""
        return await asyncio.wrap_future(self._blocked)

    def _to_arbiter(self, frame: bytes) -> None:
        kind, payload = frame[4], frame[5:]
        if kind == p.ACQUIRE:
            self._arbiter.acquire.remote(self._key, payload)
        elif kind == p.RELEASE:
            self._arbiter.release.remote(self._key, payload)

    def _report_blocked(self, runner: ShardRunner, loop: asyncio.AbstractEventLoop) -> None:
        """The watchdog thread's report: hand the culprit to :meth:`watch`, give the driver
        time to kill us, and return ``None`` (nothing to write) so the watchdog exits."""
        if not self._blocked.done():
            self._blocked.set_result(runner.blocking_job(loop))
        time.sleep(_KILL_GRACE_SECONDS)


def _node() -> str:
    return str(ray.get_runtime_context().get_node_id())
