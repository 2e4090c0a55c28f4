"""The worker process: a uvloop event loop running many instances of one workflow at once.

The coordinator sends batches of raw input lines; each becomes a task running the instance
on the in-process interpreter; finished instances go back as ready-made JSONL lines, batched
per loop iteration. The worker wakes only on data (stream reads), never on a polling sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
import traceback
from typing import Any

import orjson

from shardflow.batch import protocol as p
from shardflow.batch.loader import load_workflow
from shardflow.batch.remote_gate import RemoteGate
from shardflow.batch.spec import WorkerSpec
from shardflow.batch.watchdog import LoopWatchdog
from shardflow.engine.runner import InstanceOutcome, InstanceRunner
from shardflow.engine.snapshot import dump_state
from shardflow.engine.stepexec import run_step
from shardflow.engine.tuning import tune_gc

_FLUSH_AT = 256


def main(fd: int, spec: dict[str, Any]) -> None:
    """Process entry point: ``python -m shardflow.batch.worker FD`` with the spec (JSON) in
    ``SHARDFLOW_WORKER_SPEC``, as started by :class:`shardflow.batch.pool.WorkerPool`."""
    import uvloop

    for entry in reversed(spec.pop("sys_path", [])):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    # Ctrl-C reaches the whole process group: the coordinator decides how workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sock = socket.socket(fileno=fd)
    worker = _Worker(sock, WorkerSpec.from_dict(spec))
    profile_to = os.environ.get("SHARDFLOW_WORKER_PROFILE")
    if profile_to:  # a cProfile of this worker, for docs/PERFORMANCE.md
        import cProfile

        cProfile.runctx("uvloop.run(worker.serve())", globals(), {"uvloop": uvloop, "worker": worker},
                        f"{profile_to}.{os.getpid()}")
        return
    uvloop.run(worker.serve())


class _Worker:
    def __init__(self, sock: socket.socket, spec: WorkerSpec) -> None:
        self.sock = sock
        self.spec = spec
        self.writer: asyncio.StreamWriter | None = None
        self.header: list[list[Any]] = []
        self.blobs: list[bytes] = []
        self.flush_scheduled = False
        self.in_flight: set[asyncio.Task[None]] = set()
        self.steps: dict[str, list[float]] = {}
        self.runner: InstanceRunner | None = None
        self.gate: RemoteGate | None = None

    async def serve(self) -> None:
        reader, writer = await asyncio.open_connection(sock=self.sock)
        self.writer = writer
        try:
            definition = load_workflow(self.spec.target)
            self.gate = self._make_gate()
            self.runner = InstanceRunner(definition, gate=self.gate)
        except Exception as exc:
            writer.write(p.json_frame(p.FATAL, {
                "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}))
            await writer.drain()
            writer.close()
            return
        if self.spec.gc_freeze:
            # Start-up objects never die: keep them out of every collection, and collect
            # young objects less often (GC took 12-43 % of a fork/join run otherwise).
            tune_gc()
        writer.write(p.json_frame(p.READY, {"pid": os.getpid()}))
        loop = asyncio.get_running_loop()
        heartbeat = loop.create_task(self._heartbeat())
        watchdog = None
        if self.spec.hard_timeout is not None and self.spec.watchdog_file:
            watchdog = LoopWatchdog(loop, self.spec.hard_timeout, self.spec.watchdog_file,
                                    run_step.__code__, _Worker._run_one.__code__)
            watchdog.start()
        try:
            stopped = await self._read_loop(reader)
        finally:
            heartbeat.cancel()
            if watchdog is not None:
                watchdog.stop()
        if not stopped:
            # The coordinator is gone (killed, or it stopped us at once): results could not be
            # delivered, and it re-runs what it did not receive. Stop now.
            for task in self.in_flight:
                task.cancel()
            return
        if self.in_flight:
            await asyncio.wait(self.in_flight)
        self._flush()
        writer.write(self._stats_frame())
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    def _make_gate(self) -> RemoteGate | None:
        if not (self.spec.limits or self.spec.rate_limits):
            return None
        assert self.writer is not None
        return RemoteGate(self.writer.write)

    async def _read_loop(self, reader: asyncio.StreamReader) -> bool:
        """Serve frames until STOP (True) or until the coordinator goes away (False)."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                kind, payload = await p.read_frame(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                return False
            if kind == p.RUN:
                header, lines = p.split_batch(payload)
                for (seq, instance_id, attempt, kind, _), line in zip(header, lines, strict=True):
                    task = loop.create_task(self._run_one(seq, instance_id, attempt, kind, line))
                    self.in_flight.add(task)
                    task.add_done_callback(self.in_flight.discard)
            elif kind == p.GRANT:
                if self.gate is not None:
                    self.gate.on_grant(orjson.loads(payload))
            elif kind == p.STOP:
                return True

    async def _run_one(self, seq: int, instance_id: Any, attempt: int, kind: int,
                       line: bytes) -> None:
        assert self.runner is not None
        if kind == p.RESUME:
            job = orjson.loads(line)
            outcome = await self.runner.resume(str(instance_id), job["state"], job["data"])
        else:
            outcome = await self.runner.run(str(instance_id), orjson.loads(line))
        self._record_steps(outcome)
        if outcome.interpreter is not None:
            self._park(seq, outcome)
        record: dict[str, Any] = {
            "id": instance_id,
            "status": outcome.status.value,
            "context": outcome.context,
            "error": outcome.error.to_dict() if outcome.error else None,
            "attempts": attempt,
            "started_at": outcome.started_at,
            "duration_ms": round(outcome.duration_ms, 3),
        }
        if outcome.tasks:
            record["tasks"] = [t.to_dict() for t in outcome.tasks]
        try:
            out = orjson.dumps(record)
        except TypeError as exc:  # cannot happen for checked contexts; never lose the record
            record["context"] = None
            record["status"] = "failed"
            record["error"] = {"step": "<output>", "type": "TypeError", "message": str(exc),
                               "traceback": ""}
            out = orjson.dumps(record)
        self.header.append([seq, p.STATUS_INDEX[record["status"]], record["duration_ms"],
                            len(out)])
        self.blobs.append(out)
        if len(self.header) >= _FLUSH_AT:
            self._flush()
        elif not self.flush_scheduled:
            self.flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _park(self, seq: int, outcome: InstanceOutcome) -> None:
        """Send the snapshot of a waiting instance ahead of its result (same stream, so the
        coordinator stores it before it journals the ``waiting`` result)."""
        assert outcome.interpreter is not None and self.writer is not None
        snapshot = orjson.dumps({"state": dump_state(outcome.interpreter),
                                 "tasks": [t.to_dict() for t in outcome.tasks]})
        self._flush()
        self.writer.write(p.batch_frame(p.PARKED, [[seq, len(snapshot)]], [snapshot]))

    def _record_steps(self, outcome: InstanceOutcome) -> None:
        steps = self.steps
        for rec in outcome.history:
            if rec.status == "skipped":
                continue
            ms = (rec.ended_at - rec.started_at) * 1000.0
            stat = steps.get(rec.node)
            if stat is None:
                steps[rec.node] = [1, ms, ms]
            else:
                stat[0] += 1
                stat[1] += ms
                if ms > stat[2]:
                    stat[2] = ms

    def _flush(self) -> None:
        self.flush_scheduled = False
        if not self.header or self.writer is None:
            return
        self.writer.write(p.batch_frame(p.RESULTS, self.header, self.blobs))
        self.header = []
        self.blobs = []

    def _stats_frame(self) -> bytes:
        return p.json_frame(p.STATS, {"steps": self.steps, "cpu": time.process_time()})

    async def _heartbeat(self) -> None:
        assert self.writer is not None
        beat = p.json_frame(p.HEARTBEAT, {})
        while True:
            await asyncio.sleep(self.spec.heartbeat_seconds)
            self.writer.write(beat)
            self.writer.write(self._stats_frame())


if __name__ == "__main__":
    main(int(sys.argv[1]), orjson.loads(os.environ["SHARDFLOW_WORKER_SPEC"]))
