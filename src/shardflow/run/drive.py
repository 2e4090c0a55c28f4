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

from shardflow._loop import EventLoop
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


class _SignalNotingLoop(EventLoop):
    """An event loop that remembers the first signal whose handler it ran."""

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

    outcome: RunOutcome
    signal: int | None
    storage: StorageError | None = None
    broken_pipe: bool = False


def run_coordinator(coordinator: Coordinator, items: Iterator[Item]) -> Ended:
    """Run the coordinator on a loop of our own; a failed write it reports (output, journal,
    task store) becomes ``broken_pipe`` or ``storage``."""
    loop = _SignalNotingLoop()
    try:
        with asyncio.Runner(loop_factory=lambda: loop) as runner:
            outcome = runner.run(coordinator.run(items))
    finally:
        terminate_by_exception()  # the loop set SIGTERM back to its default
    ended = Ended(outcome, loop.received)
    for failed in (outcome.output_error, outcome.journal_error):
        if failed is not None:
            note_write_error(ended, failed.error, failed.path)
    return ended


def note_write_error(ended: Ended, exc: BaseException, path: str) -> None:
    """Fold a failed write into how the run ended: EPIPE is the reader going away."""
    if isinstance(exc, OSError) and exc.errno == errno.EPIPE:
        ended.broken_pipe = True
    elif ended.storage is None:
        ended.storage = StorageError.of(exc, path)


def exit_code(ended: Ended, totals: Counter[str]) -> int:
    """0 all completed or waiting; 1 some failed or invalid; 3 storage failed (the caller
    raises it); 130/143 interrupted; 141 the output's reader went away."""
    if ended.broken_pipe:
        return EXIT_BROKEN_PIPE
    if ended.outcome.interrupted:
        return EXIT_TERMINATED if ended.signal == signal.SIGTERM else EXIT_INTERRUPTED
    return whole_run_exit_code(totals)


def whole_run_exit_code(totals: Counter[str]) -> int:
    """The one rule of ``run`` and ``resume`` that ended normally: the code describes the
    whole run as it stands (``totals``, every session's instances by latest status), not the
    session alone: 1 while any instance of the run is failed or invalid, else 0. Resuming a
    finished run with failures says 1 again; ``--retry-failed`` that fixes them says 0."""
    bad = totals.get("failed", 0) + totals.get("invalid_input", 0)
    return EXIT_FAILED if bad else EXIT_OK
