"""Resuming runs from the page: each resume is a real ``shardflow resume RUN_DIR`` process.

Running the CLI instead of calling the resume code in the server keeps one implementation of
resume and its guarantees: the child takes the run's lock like any resume, so while another
process holds it the child exits 2 with a line naming that process, and the page shows that
line. The child's stderr goes to an anonymous temporary file (read when it ends), so nothing
has to drain a pipe while it runs. The server starts at most one resume of a run at a time;
with auto-resume, a request during a resume queues exactly one more. The server owns its
children: when it stops, it asks running resumes to stop (SIGTERM: they end gracefully and the
run stays resumable) and waits for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

from shardflow.errors import ShardflowError
from shardflow.run.errors import EXIT_OK, EXIT_PARKED

OUTPUT_LINES = 20
"""How many of the last lines of a resume's stderr (its summary, or its error) the page shows."""


class ResumeStatus(StrEnum):
    IDLE = "idle"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class ResumeRunningError(ShardflowError):
    """A resume of this run, started by this server, is still running (``.run``, ``.pid``)."""

    def __init__(self, run: str, pid: int | None) -> None:
        self.run = run
        self.pid = pid
        super().__init__(f"a resume of run {run!r} is already running (pid {pid})")


def resume_command(run_dir: Path) -> list[str]:
    """The CLI's resume; it does not wait for parked timers (a button press should end soon:
    timers due later stay parked, exit 75, and a later resume continues them)."""
    return [sys.executable, "-m", "shardflow", "resume", str(run_dir), "--no-progress",
            "--wait-timers", "0"]


SUCCESS_CODES = (EXIT_OK, EXIT_PARKED)
"""A resume that went to its end, with timers still parked or not."""


@dataclass(slots=True)
class ResumeState:
    status: ResumeStatus = ResumeStatus.IDLE
    pid: int | None = None
    exit_code: int | None = None
    message: str = ""
    output: list[str] = field(default_factory=list)
    started_at: float | None = None
    finished_at: float | None = None
    queued: bool = False
    settled: asyncio.Event = field(default_factory=asyncio.Event)

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status.value, "pid": self.pid, "exit_code": self.exit_code,
                "message": self.message, "output": self.output, "started_at": self.started_at,
                "finished_at": self.finished_at, "queued": self.queued}


def _tail(stream: IO[bytes]) -> list[str]:
    stream.seek(0)
    lines = stream.read().decode(errors="replace").splitlines()
    return [line for line in lines if line.strip()][-OUTPUT_LINES:]


class Resumer:
    """Starts and watches resume processes; lives on the server's event loop."""

    def __init__(self, command: Callable[[Path], list[str]] = resume_command) -> None:
        self._command = command
        self._states: dict[str, ResumeState] = {}
        self._watchers: set[asyncio.Task[None]] = set()
        self._processes: dict[str, asyncio.subprocess.Process] = {}

    def state(self, run: str) -> ResumeState:
        state = self._states.get(run)
        if state is None:
            state = self._states[run] = ResumeState()
            state.settled.set()
        return state

    async def start(self, run: str, path: Path) -> ResumeState:
        """Start a resume now; refused while this server's previous one runs."""
        state = self.state(run)
        if state.status is ResumeStatus.RUNNING:
            raise ResumeRunningError(run, state.pid)
        await self._spawn(run, path, state)
        return state

    async def request(self, run: str, path: Path) -> ResumeState:
        """Resume as soon as possible: now, or once more after the running resume ends."""
        state = self.state(run)
        if state.status is ResumeStatus.RUNNING:
            state.queued = True
        else:
            await self._spawn(run, path, state)
        return state

    async def settled(self, run: str) -> ResumeState:
        """The state once no resume of ``run`` is running (nor queued)."""
        state = self.state(run)
        await state.settled.wait()
        return state

    async def _spawn(self, run: str, path: Path, state: ResumeState) -> None:
        stderr = tempfile.TemporaryFile()  # noqa: SIM115  (the watcher closes it when the child ends)
        try:
            process = await asyncio.create_subprocess_exec(
                *self._command(path), stdin=asyncio.subprocess.DEVNULL, stderr=stderr)
        except OSError as exc:
            stderr.close()
            state.status, state.message = ResumeStatus.FAILED, f"cannot start resume: {exc}"
            return
        state.status, state.pid, state.exit_code = ResumeStatus.RUNNING, process.pid, None
        state.message, state.output, state.queued = "", [], False
        state.started_at, state.finished_at = time.time(), None
        state.settled.clear()
        self._processes[run] = process
        watcher = asyncio.create_task(self._watch(run, path, state, process, stderr))
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)

    async def _watch(self, run: str, path: Path, state: ResumeState,
                     process: asyncio.subprocess.Process, stderr: IO[bytes]) -> None:
        with stderr:
            code = await process.wait()
            state.output = _tail(stderr)
        del self._processes[run]
        state.exit_code, state.finished_at = code, time.time()
        state.status = ResumeStatus.SUCCEEDED if code in SUCCESS_CODES else ResumeStatus.FAILED
        state.message = state.output[-1] if state.output else f"resume exited with status {code}"
        if state.queued:
            await self._spawn(run, path, state)
            if state.status is ResumeStatus.RUNNING:
                return
        state.settled.set()

    async def aclose(self) -> None:
        """Stop running resumes gracefully and wait for them; queued ones are dropped."""
        for state in self._states.values():
            state.queued = False
        for process in self._processes.values():
            with contextlib.suppress(ProcessLookupError):  # it ended; its watcher is due
                process.terminate()
        while self._watchers:
            await asyncio.wait(set(self._watchers))
