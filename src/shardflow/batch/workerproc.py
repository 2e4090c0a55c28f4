"""One worker process as the pool sees it: how it is started, its stream, its jobs in
flight, and how it is stopped and reaped.

What a worker writes to stdout or stderr (a ``print`` in a step, a warning, a traceback) is
read line by line and logged on ``shardflow.worker`` at WARNING, naming the worker: it obeys
the command's ``-q``/``--log-level`` and never mixes into JSONL results on stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import orjson

from shardflow.batch import protocol as p
from shardflow.batch.jobs import Job

SPEC_ENV = "SHARDFLOW_WORKER_SPEC"
"""The environment variable that carries the worker's spec (JSON)."""


class Start(Enum):
    """How a worker's start-up ended."""

    READY = "ready"
    FATAL = "fatal"  # the workflow failed to load: the same in every attempt
    EXITED = "exited"  # exited (no signal) before it was ready: counts toward "cannot start"
    KILLED = "killed"  # a signal ended it before it was ready: says nothing of the workflow
    TIMED_OUT = "timed out"  # never became ready within the start-up timeout


@dataclass(frozen=True, slots=True)
class StartReport:
    outcome: Start
    detail: str = ""


@dataclass(eq=False)
class WorkerProcess:
    slot: int
    process: asyncio.subprocess.Process
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    watchdog_file: str
    started: asyncio.Future[StartReport]
    inflight: dict[int, Job] = field(default_factory=dict)
    running: bool = False
    """It has loaded the workflow (``READY``) and takes jobs."""
    exclusive: bool = False
    """It runs one suspect alone."""
    stopping: bool = False
    dead: bool = False
    """Its stream has ended: nothing more may be sent to it (its in-flight jobs are about to
    be recovered, and a job added after that would be lost)."""
    reader_task: asyncio.Task[None] | None = None
    output_relay: asyncio.Task[None] | None = None
    """Logs what the process writes to stdout/stderr (see the module docstring)."""

    @property
    def pid(self) -> int:
        return self.process.pid

    def grant(self, rids: list[int]) -> None:
        """Send limit grants (the arbiter's sender); a worker gone gets nothing."""
        if not self.dead and not self.writer.is_closing():
            self.writer.write(p.json_frame(p.GRANT, rids))

    def stop(self, *, kill: bool) -> None:
        """Ask the worker to finish what it has in flight and exit, or kill it."""
        self.stopping = True
        if kill:
            self.kill()
        else:
            with contextlib.suppress(ConnectionError, RuntimeError):
                self.writer.write(p.frame(p.STOP, b""))

    def kill(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()

    def settle_start(self, report: StartReport) -> None:
        """End the start-up with ``report`` (the first report wins)."""
        if not self.started.done():
            self.started.set_result(report)

    def watchdog_report(self) -> dict[str, Any] | None:
        """What the worker's watchdog wrote before it ended the worker, if anything."""
        try:
            data = orjson.loads(Path(self.watchdog_file).read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        return data if isinstance(data, dict) else None

    def discard_watchdog_report(self) -> None:
        with contextlib.suppress(OSError):
            Path(self.watchdog_file).unlink()

    async def reap(self) -> int | None:
        """Wait for the process to exit; kill it if it lingers (its stream has ended). Its
        last output lines are logged before this returns."""
        try:
            code = await asyncio.wait_for(self.process.wait(), 5.0)
        except TimeoutError:
            self.kill()
            code = await self.process.wait()
        relay = self.output_relay
        if relay is not None:  # EOF at once, unless a child of the worker holds the pipe
            done, _ = await asyncio.wait([relay], timeout=_RELAY_GRACE)
            if not done:
                relay.cancel()
        return code


IGNORING_SIGINT = ("/bin/sh", "-c", 'trap "" INT; exec "$0" "$@"')
"""How a worker process is started: ``python -m shardflow.batch.worker FD`` with SIGINT
ignored from its first instruction. Ctrl-C reaches the whole process group and the coordinator
decides how workers stop; a worker must not die of it with a traceback while it imports. An
ignored signal stays ignored across ``exec`` (and Python then installs no handler for it), but
uvloop's spawn resets every disposition in the child: so a shell sets it, then execs Python."""


async def launch(slot: int, spec: dict[str, Any], watchdog_file: str) -> WorkerProcess:
    """Start a fresh interpreter running the worker (no fork of this process and no
    re-import of the caller's ``__main__``), connected by a socket pair."""
    parent, child = socket.socketpair()
    # Our own pipe, not asyncio's: the process transport would wait for it to close before
    # ``wait()`` returns, and a child the worker started may hold it open for ever.
    output, output_end = os.pipe()
    try:
        process = await asyncio.create_subprocess_exec(
            *IGNORING_SIGINT, sys.executable, "-m", "shardflow.batch.worker", str(child.fileno()),
            stdin=asyncio.subprocess.DEVNULL, stdout=output_end, stderr=output_end,
            pass_fds=(child.fileno(),),
            env={**os.environ, SPEC_ENV: orjson.dumps({**spec, "sys_path": sys.path}).decode(),
                 "PYTHONUNBUFFERED": "1"},  # a print reaches the log when it happens
        )
    except BaseException:
        parent.close()
        os.close(output)
        raise
    finally:
        child.close()
        os.close(output_end)
    relay = await _relay_output(slot, output)
    reader, writer = await asyncio.open_connection(sock=parent, limit=1 << 26)
    started: asyncio.Future[StartReport] = asyncio.get_running_loop().create_future()
    return WorkerProcess(slot, process, reader, writer, watchdog_file, started, output_relay=relay)


_worker_log = logging.getLogger("shardflow.worker")
_LINE_LIMIT = 1 << 16
_RELAY_GRACE = 1.0
"""Seconds the output of a worker that exited may take to end (its last lines)."""


async def _relay_output(slot: int, fd: int) -> asyncio.Task[None]:
    """Log each line written to the pipe ``fd`` until it ends (the worker exited)."""
    loop = asyncio.get_running_loop()
    output = asyncio.StreamReader(limit=_LINE_LIMIT)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(output),
                                                os.fdopen(fd, "rb", buffering=0))

    async def relay() -> None:
        try:
            while True:
                try:
                    line = await output.readline()
                except ValueError:  # over the limit: readline dropped it
                    _worker_log.warning("worker %d: <a line over 64 KiB, not shown>", slot)
                    continue
                if not line:
                    return
                _worker_log.warning("worker %d: %s", slot, line.decode(errors="replace").rstrip("\r\n"))
        finally:
            transport.close()

    return loop.create_task(relay())
