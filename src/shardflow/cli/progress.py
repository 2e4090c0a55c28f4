"""Progress on stderr: a bar on a terminal, a line every ``every`` seconds otherwise.

Both show how many instances are done, of how many when that is known (``--generate N``, or
the records of an input file, counted in a background thread while the run starts), the
percentage and an ETA, and the rate over the last :data:`WINDOW` seconds next to the average
since the start: the average hides a run that slowed down or sped up.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from shardflow.batch.sources import count_records
from shardflow.batch.stats import RunStats

WINDOW = 10.0
"""Seconds of history behind the recent rate."""
_log = logging.getLogger("shardflow")


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def describe(done: int, total: int | None, in_flight: int, recent: float, average: float) -> str:
    """``1,200/5,000 (24%), 40 in flight, 310/s now (290/s average), ETA 0:12``"""
    text = f"{done:,}/{total:,} ({100 * done / total:.0f}%)" if total else f"{done:,}"
    text += f", {in_flight:,} in flight, {recent:,.0f}/s now ({average:,.0f}/s average)"
    if total and done < total and recent > 0:
        text += f", ETA {_duration((total - done) / recent)}"
    return text


class Progress:
    """Called by the coordinator with the stats about four times a second."""

    def __init__(self, total: int | None, *, enabled: bool = True, every: float = 10.0,
                 terminal: bool | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.total = total
        self.enabled = enabled
        self.every = every
        self._clock = clock
        self._last_line = clock()
        self._samples: deque[tuple[float, int]] = deque()
        self._rich: Any = None
        self._task: Any = None
        if enabled and (sys.stderr.isatty() if terminal is None else terminal):
            from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as RichProgress

            self._rich = RichProgress(TextColumn("[bold]shardflow"), BarColumn(),
                                      TextColumn("{task.fields[info]}, elapsed"), TimeElapsedColumn(),
                                      transient=True)
            self._rich.start()
            self._task = self._rich.add_task("run", total=total, info="starting")

    def count_in_background(self, path: str, fmt: str | None) -> None:
        """Learn the total from the input file without delaying the run."""
        if not self.enabled or self.total is not None:
            return

        def count() -> None:
            try:
                self.total = count_records(path, fmt)
            except OSError:
                return

        threading.Thread(target=count, name="shardflow-count-input", daemon=True).start()

    def _recent_rate(self, now: float, done: int) -> float:
        samples = self._samples
        samples.append((now, done))
        while len(samples) > 2 and now - samples[1][0] >= WINDOW:
            samples.popleft()
        then, done_then = samples[0]
        return (done - done_then) / (now - then) if now > then else 0.0

    def __call__(self, stats: RunStats, in_flight: int) -> None:
        if not self.enabled:
            return
        now = self._clock()
        done = stats.total
        recent = self._recent_rate(now, done)
        average = done / stats.elapsed if stats.elapsed > 0 else 0.0
        info = describe(done, self.total, in_flight, recent, average)
        if self._rich is not None:
            self._rich.update(self._task, completed=done, total=self.total, info=info)
            return
        if now - self._last_line >= self.every:
            self._last_line = now
            _log.info("%s, elapsed %s", info, _duration(stats.elapsed))

    def close(self) -> None:
        if self._rich is not None:
            self._rich.stop()
