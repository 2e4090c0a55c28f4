"""Jobs: one input instance on its way through the pool, and the feed they come from."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice

from shardflow.engine.rows import InputId, JobKind


@dataclass(slots=True, eq=False)
class Job:
    """One instance: its position in the input, its id, its raw JSON line, and how many
    times it has been started (``attempt``) and has taken a worker down with it."""

    seq: int
    id: InputId | None
    """As the input spelled it; None only for a pre-answered record that had no usable id."""
    line: bytes
    attempt: int = 1
    crashes: int = 0
    hard_timeouts: int = 0
    kind: int = JobKind.NEW
    """A :class:`JobKind` code: ``NEW`` (``line`` is its input) or ``RESUME`` (a waiting
    instance: ``line`` holds its snapshot and the completed tasks' data)."""
    answer: tuple[int, bytes] | None = None
    """A pre-answered job (an input line that cannot be an instance): its status code and
    result line. The pool hands it to the listener in input order instead of to a worker, so
    reading input never writes output."""


_new_object = object.__new__
_NEW = int(JobKind.NEW)


def new_job(seq: int, instance_id: InputId, line: bytes) -> Job:
    """``Job(seq, instance_id, line)``, as sources make one per input record: without the
    class call (half the cost of a job's making; ``tests/batch/test_feed.py`` holds the two
    to the same fields)."""
    job: Job = _new_object(Job)
    job.seq = seq
    job.id = instance_id
    job.line = line
    job.attempt = 1
    job.crashes = 0
    job.hard_timeouts = 0
    job.kind = _NEW
    job.answer = None
    return job


class Feed:
    """Where the pool takes jobs from: re-queued jobs first, then queued ones, then the
    source, lazily (bounded memory for any input size).

    ``source`` is a plain iterator (the CLI reads files) or ``None`` for a feed filled with
    :meth:`put` (the embedding API). ``room`` says how many more jobs may be read from the
    source now (the ordered mode's window); by default there is no bound. The feed never
    calls anyone: whoever adds jobs tells the pool (:meth:`WorkerPool.submit`).
    """

    def __init__(self, source: Iterator[Job] | None = None, *,
                 room: Callable[[], int] | None = None) -> None:
        self._source = source
        self._retry: deque[Job] = deque()
        self._queued: deque[Job] = deque()
        self._room = room or _unbounded
        self.closed = False
        self._held = False

    def put(self, job: Job) -> None:
        self._queued.append(job)

    def requeue(self, job: Job) -> None:
        """A job that must run again (its worker died): it goes before everything else."""
        self._retry.append(job)

    def close(self) -> None:
        """No more :meth:`put` calls will come."""
        self.closed = True

    def hold(self) -> None:
        """Stay open after the source ends, until :meth:`release` (or :meth:`stop`): a run's
        timer watch may still :meth:`put` the instances whose timers fire."""
        self._held = True

    def release(self) -> None:
        """Undo :meth:`hold`: the feed is exhausted once the source and the queue are."""
        self._held = False

    def stop(self) -> None:
        """Take nothing more from the source or from callers (an interrupt, a closed
        output): jobs already queued or re-queued still run."""
        self._source = None
        self.closed = True
        self._held = False

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
            want = min(count - len(taken), self._room())
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
        return (self.closed and self._source is None and not self._retry and not self._queued
                and not self._held)

    @property
    def has_queued(self) -> bool:
        """Jobs waiting in memory (re-queued or put), as opposed to an unread source."""
        return bool(self._retry or self._queued)

    @property
    def source_open(self) -> bool:
        return self._source is not None

    @property
    def has_ready(self) -> bool:
        """Whether :meth:`take` may return something now."""
        return bool(self._retry or self._queued) or (self._source is not None
                                                     and self._room() > 0)


def _unbounded() -> int:
    return 1 << 62
