"""The worker process: a thin host around :class:`~shardflow.engine.shard.ShardRunner`.

The host owns what is about the process and the socket: framing, routing limit grants to the
gate, heartbeats, the loop watchdog and the STATS report. Everything about one instance
(decode, run, error boundary, encode) is the shard runner's. The worker wakes only on data
(stream reads), never on a polling sleep.

When the coordinator goes away (its socket ends or breaks), nobody is left to receive
results: the worker cancels its instances and exits at once, quietly. The coordinator, or
``shardflow resume``, re-runs what it did not receive.
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

from shardflow._loop import run
from shardflow.batch import protocol as p
from shardflow.batch.remote_gate import RemoteGate
from shardflow.batch.spec import WorkerSpec
from shardflow.batch.watchdog import LoopWatchdog
from shardflow.engine.shard import ShardOutput, ShardRunner
from shardflow.engine.tuning import tune_gc
from shardflow.model.loader import load_workflow

_UNWIND_SECONDS = 1.0
"""How long cancelled instances of an orphaned worker may take to unwind before it exits."""


def main(fd: int, spec: dict[str, Any]) -> None:
    """Process entry point: ``python -m shardflow.batch.worker FD`` with the spec (JSON) in
    ``SHARDFLOW_WORKER_SPEC``, as started by :class:`shardflow.batch.pool.WorkerPool`."""
    for entry in reversed(spec.pop("sys_path", [])):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    # Ctrl-C reaches the whole process group: the coordinator decides how workers stop
    # (workerproc starts workers with SIGINT ignored already; this is for one started otherwise).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sock = socket.socket(fileno=fd)
    worker = _Worker(sock, WorkerSpec.from_dict(spec))
    profile_to = os.environ.get("SHARDFLOW_WORKER_PROFILE")
    if profile_to:  # a cProfile of this worker, for docs/PERFORMANCE.md
        import cProfile

        cProfile.runctx("run(worker.serve())", globals(), {"run": run, "worker": worker},
                        f"{profile_to}.{os.getpid()}")
        return
    run(worker.serve())


class _Worker:
    def __init__(self, sock: socket.socket, spec: WorkerSpec) -> None:
        self.sock = sock
        self.spec = spec
        self.writer: asyncio.StreamWriter | None = None
        self.gone = False
        """The coordinator's end is closed: nothing can be sent any more."""
        self.gate: RemoteGate | None = None

    async def serve(self) -> None:
        reader, writer = await asyncio.open_connection(sock=self.sock)
        self.writer = writer
        if self.spec.limits or self.spec.rate_limits:
            self.gate = RemoteGate(self._send)
        loop = asyncio.get_running_loop()
        watched = self.spec.hard_timeout is not None and bool(self.spec.watchdog_file)
        try:
            # The runner compiles (and so checks) the definition: a definition that is
            # invalid here, whatever the coordinator saw, is a load failure like an import
            # error, reported once instead of a worker dying at start-up again and again.
            shard = ShardRunner(load_workflow(self.spec.target), gate=self.gate,
                                on_output=self._send_output, watched=watched,
                                events=self.spec.events)
        except BaseException as exc:  # an import that raises SystemExit is a load failure too
            self._send(p.json_frame(p.FATAL, {
                "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}))
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            writer.close()
            return
        if self.spec.gc_freeze:
            # Start-up objects never die: keep them out of every collection, and collect
            # young objects less often (GC took 12-43 % of a fork/join run otherwise).
            tune_gc()
        self._send(p.json_frame(p.READY, {"pid": os.getpid()}))
        heartbeat = loop.create_task(self._heartbeat(shard))
        watchdog = None
        if watched:
            assert self.spec.hard_timeout is not None
            watchdog = LoopWatchdog(loop, self.spec.hard_timeout, self.spec.watchdog_file,
                                    lambda: shard.blocking_job(loop))
            watchdog.start()
        try:
            stopped = await self._read_loop(reader, shard)
        finally:
            heartbeat.cancel()
            if watchdog is not None:
                watchdog.stop()
        if not stopped or self.gone:
            await self._orphaned(shard)
            return
        await shard.drain()
        self._send(self._stats_frame(shard))
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    async def _read_loop(self, reader: asyncio.StreamReader, shard: ShardRunner) -> bool:
        """Serve frames until STOP (True) or until the coordinator goes away (False)."""
        while not self.gone:
            try:
                kind, payload = await p.read_frame(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                return False
            if kind == p.RUN:
                shard.submit(*p.split_batch(payload))
            elif kind == p.GRANT:
                if self.gate is not None:
                    self.gate.on_grant(orjson.loads(payload))
            elif kind == p.STOP:
                return True
        return False

    async def _orphaned(self, shard: ShardRunner) -> None:
        """The coordinator is gone (killed, or it stopped us at once): results cannot be
        delivered. Cancel every instance, give their ``finally`` blocks a moment, and go."""
        self.gone = True
        shard.cancel()
        try:
            async with asyncio.timeout(_UNWIND_SECONDS):
                await shard.drain()
        except TimeoutError:
            os._exit(0)  # an instance that ignores cancellation must not keep us alive

    def _send(self, frame: bytes) -> None:
        """Write a frame, unless the coordinator is gone; a write that finds the socket
        closed marks it gone instead of raising into whoever sent (a step's gate release,
        a heartbeat)."""
        writer = self.writer
        if self.gone or writer is None:
            return
        if writer.transport.is_closing():
            self.gone = True
            return
        try:
            writer.write(frame)
        except (ConnectionError, RuntimeError):
            self.gone = True

    def _send_output(self, out: ShardOutput) -> None:
        # Snapshots first, on the same stream: the coordinator stores them before it
        # journals the ``waiting`` results that follow.
        if out.events:
            self._send(p.batch_frame(p.EVENTS, out.event_rows, out.events))
        if out.snapshots:
            self._send(p.batch_frame(p.PARKED, out.parked_rows, out.snapshots))
        self._send(p.batch_frame(p.RESULTS, out.rows, out.lines))

    def _stats_frame(self, shard: ShardRunner) -> bytes:
        return p.json_frame(p.STATS, {"steps": shard.step_stats(), "failures": shard.failures(),
                                      "cpu": time.process_time()})

    async def _heartbeat(self, shard: ShardRunner) -> None:
        beat = p.json_frame(p.HEARTBEAT, {})
        while not self.gone:
            await asyncio.sleep(self.spec.heartbeat_seconds)
            self._send(beat)
            self._send(self._stats_frame(shard))


if __name__ == "__main__":
    main(int(sys.argv[1]), orjson.loads(os.environ["SHARDFLOW_WORKER_SPEC"]))
