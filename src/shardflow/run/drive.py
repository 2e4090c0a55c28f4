"""Running the coordinator for a run, and turning how it ended into an exit code.

The coordinator handles SIGINT and SIGTERM alike (stop reading, let in-flight instances
finish); which one came decides the exit code (130 or 143), so the loop the coordinator runs
on notes the signal of every handler installed on it.
"""

from __future__ import annotations

import asyncio
import errno
import signal
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVarTuple

import uvloop

from shardflow.batch.coordinator import Coordinator, RunOutcome
from shardflow.batch.sources import Item
from shardflow.run.errors import (
    EXIT_BROKEN_PIPE,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    StorageError,
)
from shardflow.run.signals import terminate_by_exception

_Ts = TypeVarTuple("_Ts")


class _SignalNotingLoop(uvloop.Loop):
    """A uvloop loop that remembers the first signal whose handler it ran."""

    received: int | None = None

    def add_signal_handler(self, sig: int, callback: Callable[[*_Ts], object],
                           *args: *_Ts) -> None:
        def noted() -> None:
            if self.received is None:
                self.received = sig
            callback(*args)

        super().add_signal_handler(sig, noted)


@dataclass(slots=True)
class Ended:
    """How a coordinator run ended."""

    outcome: RunOutcome | None
    signal: int | None
    storage: StorageError | None = None
    broken_pipe: bool = False


def run_coordinator(coordinator: Coordinator, items: Iterator[Item]) -> Ended:
    loop = _SignalNotingLoop()
    try:
        with asyncio.Runner(loop_factory=lambda: loop) as runner:
            outcome = runner.run(coordinator.run(items))
    except OSError as exc:  # a write at the end of the run (the coordinator's last flush)
        ended = Ended(None, loop.received)
        _note_os_error(ended, exc, "output")
        return ended
    finally:
        terminate_by_exception()  # the loop set SIGTERM back to its default
    return Ended(outcome, loop.received)


def _note_os_error(ended: Ended, exc: OSError, fallback: str) -> None:
    if exc.errno == errno.EPIPE:
        ended.broken_pipe = True
    elif ended.storage is None:
        ended.storage = StorageError.of(exc, fallback)


def note_output_error(ended: Ended, error: OSError | None) -> None:
    """Fold a failed write to the output into how the run ended."""
    if error is not None:
        _note_os_error(ended, error, "output")


def exit_code(ended: Ended, totals: Counter[str]) -> int:
    """0 all completed or waiting; 1 some failed or invalid; 3 storage failed (the caller
    raises it); 130/143 interrupted; 141 the output's reader went away."""
    if ended.broken_pipe:
        return EXIT_BROKEN_PIPE
    if ended.outcome is not None and ended.outcome.interrupted:
        return EXIT_TERMINATED if ended.signal == signal.SIGTERM else EXIT_INTERRUPTED
    bad = totals.get("failed", 0) + totals.get("invalid_input", 0)
    return EXIT_FAILED if bad else EXIT_OK
