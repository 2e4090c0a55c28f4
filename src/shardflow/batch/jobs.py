"""Jobs: one input instance on its way through the pool, and the feed they come from."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any


@dataclass(slots=True, eq=False)
class Job:
    """One instance: its position in the input, its id, its raw JSON line, and how many
    times it has been started (``attempt``) and has taken a worker down with it."""

    seq: int
    id: Any
    line: bytes
    attempt: int = 1
    crashes: int = 0
    hard_timeouts: int = 0
    kind: int = 0
    """0: a new instance (``line`` is its input); 1: a waiting instance to resume (``line``
    holds its snapshot and the completed tasks' data)."""


class Feed:
    """Where workers take jobs from: re-queued jobs first, then the source, lazily.

    ``source`` is a plain iterator (the CLI reads files) or ``None`` for a feed filled with
    :meth:`put` (the embedding API). ``on_available`` is called when new jobs appear.
    """

    def __init__(self, source: Iterator[Job] | None = None) -> None:
        self._source = source
        self._retry: deque[Job] = deque()
        self._queued: deque[Job] = deque()
        self.closed = False
        self.listeners: list[Callable[[], None]] = []
        self.room: Callable[[], int] = lambda: 1 << 62
        """How many more jobs may be read from the source now (the ordered mode's window)."""

    def put(self, job: Job) -> None:
        self._queued.append(job)
        self._notify()

    def requeue(self, job: Job) -> None:
        self._retry.append(job)
        self._notify()

    def close(self) -> None:
        """No more :meth:`put` calls will come."""
        self.closed = True
        self._notify()

    def stop(self) -> None:
        """Take nothing more from the source (an interrupt): jobs already queued still run."""
        self._source = None
        self.closed = True

    def _notify(self) -> None:
        for listener in self.listeners:
            listener()

    def take(self, count: int) -> list[Job]:
        """Up to ``count`` jobs, without waiting."""
        taken: list[Job] = []
        retry = self._retry
        while retry and len(taken) < count:
            taken.append(retry.popleft())
        queued = self._queued
        while queued and len(taken) < count:
            taken.append(queued.popleft())
        source = self._source
        if source is not None:
            want = min(count - len(taken), self.room())
            if want > 0:
                got = list(islice(source, want))
                taken += got
                if len(got) < want:
                    self._source = None
                    self.closed = True
        return taken

    @property
    def exhausted(self) -> bool:
        """Nothing queued now and nothing more will come (jobs in flight may still return)."""
        return self.closed and self._source is None and not self._retry and not self._queued

    @property
    def has_queued(self) -> bool:
        """Jobs waiting in memory (re-queued or put), as opposed to an unread source."""
        return bool(self._retry or self._queued)

    @property
    def source_open(self) -> bool:
        return self._source is not None

    @property
    def has_ready(self) -> bool:
        return bool(self._retry or self._queued) or (self._source is not None and self.room() > 0)
