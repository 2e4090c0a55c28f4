"""Progress display: a rich bar on a terminal, a plain line every few seconds otherwise."""

from __future__ import annotations

import sys
import time
from typing import Any

from shardflow.batch.stats import RunStats


class Progress:
    """Called by the coordinator with the stats about four times a second."""

    def __init__(self, total: int | None, *, enabled: bool = True, every: float = 5.0) -> None:
        self.total = total
        self.enabled = enabled
        self.every = every
        self._last_line = time.monotonic()
        self._rich: Any = None
        self._task: Any = None
        if enabled and sys.stderr.isatty():
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
            )
            from rich.progress import Progress as RichProgress

            self._rich = RichProgress(
                TextColumn("[bold]shardflow"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}/s"), TimeElapsedColumn(), transient=True,
            )
            self._rich.start()
            self._task = self._rich.add_task("run", total=total, rate="0")

    def __call__(self, stats: RunStats, in_flight: int) -> None:
        if not self.enabled:
            return
        done = stats.total
        rate = done / stats.elapsed if stats.elapsed > 0 else 0.0
        if self._rich is not None:
            self._rich.update(self._task, completed=done, rate=f"{rate:,.0f}")
            return
        now = time.monotonic()
        if now - self._last_line >= self.every:
            self._last_line = now
            of = f"/{self.total}" if self.total else ""
            sys.stderr.write(f"shardflow: {done}{of} done, {in_flight} in flight, {rate:,.0f}/s\n")
            sys.stderr.flush()

    def close(self) -> None:
        if self._rich is not None:
            self._rich.stop()
