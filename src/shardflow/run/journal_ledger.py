"""RunLedger: the durable side of a run, so a crash or an interrupt loses nothing.

* every result is appended to the journal, and the journal is flushed before the result is
  written to the output and counted as done;
* snapshots of instances that wait for people are saved to the task store before their
  ``waiting`` result is journalled;
* a resumed instance's final result is journalled before the store marks it finished, so a
  crash in between makes resume find the result instead of running the instance again.

The coordinator sees it through :class:`shardflow.batch.ledger.RunLedger` (a Protocol).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import orjson

from shardflow.batch import protocol as p
from shardflow.batch.jobs import Job
from shardflow.engine.results import Status
from shardflow.engine.rows import ResultRow
from shardflow.model.tasks import HumanTask
from shardflow.store.journal import FileJournal, SeqSet
from shardflow.store.tasks import TaskStore, WaitingInstance

_WAITING = int(Status.WAITING)


def instance_key(instance_id: Any) -> str:
    """The task store's key of an input id: its JSON text, so ``1`` and ``"1"`` differ."""
    return orjson.dumps(instance_id).decode()


class JournalLedger:
    """Journals results and parks waiting instances for a run directory's coordinator.

    A failed write (journal or task store) is raised to the coordinator, which stops the run
    and reports it in ``RunOutcome.journal_error``."""

    def __init__(self, journal: FileJournal, tasks: Callable[[], TaskStore], workflow: str,
                 version: str, done: SeqSet | None = None,
                 resumed: list[WaitingInstance] | None = None) -> None:
        self.journal = journal
        self._tasks = tasks
        self.workflow = workflow
        self.version = version
        self.done = done or SeqSet()
        """Input positions already journalled before this session (skipped when reading)."""
        self._resumed = {w.seq: w.instance_id for w in resumed or ()}
        """seq -> store key of the waiting instances this session continues."""
        self._finished: list[str] = []
        self.waited: set[int] | None = None
        """With a timer watch: the seqs whose ``waiting`` record this session journalled
        (only those, or an earlier session's, may be continued: their record comes first)."""

    def add_resumed(self, instances: list[WaitingInstance]) -> None:
        """This session continues these waiting instances too (their timers fired)."""
        self._resumed.update((w.seq, w.instance_id) for w in instances)

    def record_batch(self, jobs: list[Job], header: list[ResultRow], lines: list[bytes]) -> None:
        """Journal a batch of results in one write; a continued waiting instance that ended
        is marked finished in the store at the next flush (after its result is durable)."""
        self.journal.append_results(header, lines)  # header rows start [job.seq, status]
        if self.waited is not None:
            self.waited.update(row[0] for row in header if row[1] == _WAITING)
        resumed = self._resumed
        if resumed:
            # by seq, not by id: the coordinator spells ids with str(), which makes 1 and
            # "1" one instance
            self._finished += [resumed[row[0]] for row in header
                               if row[0] in resumed and row[1] != _WAITING]

    def parked(self, items: list[tuple[Job, bytes]]) -> None:
        waiting = []
        for job, blob in items:
            snapshot = orjson.loads(blob)
            key = instance_key(job.id)
            waiting.append(WaitingInstance(
                instance_id=key, workflow=self.workflow, version=self.version, seq=job.seq,
                state=snapshot["state"], input_id=job.id,
                tasks=[replace(HumanTask.from_dict(t), instance_id=key)
                       for t in snapshot["tasks"]]))
        self._tasks().save_waiting(waiting)

    def flush(self) -> None:
        self.journal.flush()
        if self._finished:
            finished, self._finished = self._finished, []
            self._tasks().mark_finished(finished)

    def close(self) -> None:
        self.flush()
        self.journal.close()


def resume_job(instance: WaitingInstance) -> Job:
    """A job that continues a waiting instance in a worker, with its tasks' data and who
    completed them (``users``, when anyone is named); its id is the input's id, typed as the
    input spelled it."""
    data = {t.id: t.data for t in instance.tasks if t.data is not None}
    users = {t.id: t.completed_by for t in instance.tasks
             if t.data is not None and t.completed_by is not None}
    job: dict[str, Any] = {"state": instance.state, "data": data}
    if users:
        job["users"] = users
    line = orjson.dumps(job)
    return Job(instance.seq, instance.input_id, line, kind=p.RESUME)


