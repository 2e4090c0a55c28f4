"""What the pool reports to: one listener object, one method per kind of event.

A single result is a batch of one; a pre-answered job (invalid input) and a job no worker
could finish (``WorkerLost``, ``HardTimeout``) arrive through the same :meth:`on_batch` as
the results workers send, so the coordinator and the embedding API have one path each.
"""

from __future__ import annotations

from typing import Protocol

from shardflow.batch.jobs import Job
from shardflow.engine.rows import ResultRow


class ResultListener(Protocol):
    """Receives results from a :class:`~shardflow.batch.pool.WorkerPool`.

    An exception raised by a listener method is never taken for a worker's death: the pool
    stops dispatching and :meth:`WorkerPool.wait_idle` re-raises it. A listener that can go
    on after a failure of its own (a closed output) must catch it itself.
    """

    def on_batch(self, jobs: list[Job], rows: list[ResultRow], lines: list[bytes]) -> None:
        """Results of ``jobs``: ``rows[i]`` is ``[seq, status code, duration ms, length]``
        and ``lines[i]`` the finished output line of ``jobs[i]``."""
        ...

    def on_parked(self, parked: list[tuple[Job, bytes]]) -> None:
        """Snapshots of instances about to be reported ``waiting`` (stored before their
        result, so a journalled ``waiting`` always has its snapshot)."""
        ...

    def on_events(self, events: list[tuple[Job, bytes]]) -> None:
        """Lifecycle events of jobs, each job's as JSONL in the order they happened, before
        that job's result (only from workers whose spec asks for events)."""
        ...

    def on_settled(self) -> None:
        """The end of one frame's worth of results: make what was delivered durable."""
        ...

    def on_stopped(self, error: BaseException) -> None:
        """The pool stopped because of ``error`` (workers cannot start again, or a listener
        method raised): no more results will come for the jobs still in flight."""
        ...
