"""StepStats: per step path, executions, total and longest seconds, limit wait and retries,
over every instance a batch worker runs.

Why durations are kept in lists and folded later: counting an execution in place (look the
row up, add, compare with the maximum) is several times the work of appending its duration to
the step's list, on every step of every instance, and folding a list is ``len``, ``sum`` and
``max``, all in C (docs/PERFORMANCE.md). A host folds at every batch of answers it
sends (``ShardRunner.flush``), so the lists stay short.

Execution time excludes the wait for a limit or rate slot, which is counted apart: a step that
does nothing behind a 40/s limit is not slow, it waits.
"""

from __future__ import annotations

from collections import defaultdict

from shardflow.engine.rows import StepEntry


class StepStats:
    """Statistics without a record per step (docs/SEMANTICS.md, "Statistics")."""

    __slots__ = ("_rows", "durations")

    def __init__(self) -> None:
        self.durations: defaultdict[str, list[float]] = defaultdict(list)
        """step path -> seconds of each execution not folded yet: append to count one."""
        self._rows: dict[str, list[float]] = {}

    def count(self, path: str, seconds: float) -> None:
        """Count one execution of the step at ``path`` that took ``seconds``."""
        self.durations[path].append(seconds)

    def count_log(self, entries: list[StepEntry]) -> None:
        """Count the attempts a step log holds (an instance that kept its history,
        ``engine/history_need.py``): each attempt's execution, and a retry for each attempt
        after the first. Skipped nodes (attempt 0) are not executions."""
        durations = self.durations
        for path, _status, attempt, started, ended, _error in entries:
            if attempt:
                durations[path].append(ended - started)
                if attempt > 1:
                    self.retried(path)

    def waited(self, path: str, seconds: float) -> None:
        """Count ``seconds`` spent waiting for a limit or rate slot before a step ran."""
        self._row(path)[3] += seconds

    def retried(self, path: str) -> None:
        """Count one retry of the step at ``path``."""
        self._row(path)[4] += 1

    def fold(self) -> None:
        """Move the pending durations into the rows."""
        for path, seconds in self.durations.items():
            if seconds:
                row = self._row(path)
                row[0] += len(seconds)
                row[1] += sum(seconds)
                longest = max(seconds)
                if longest > row[2]:
                    row[2] = longest
                seconds.clear()

    def rows(self) -> dict[str, list[float]]:
        """step path -> ``[executions, total s, max s, wait s, retries]``, everything counted
        so far (a fresh copy)."""
        self.fold()
        return {path: list(row) for path, row in self._rows.items()}

    def _row(self, path: str) -> list[float]:
        row = self._rows.get(path)
        if row is None:
            row = self._rows[path] = [0, 0.0, 0.0, 0.0, 0]
        return row
