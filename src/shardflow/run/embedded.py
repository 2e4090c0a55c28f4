"""The run directory of a durable :class:`~shardflow.run.executor.BatchExecutor`.

``BatchExecutor(..., run_dir=path)`` gets what ``shardflow run`` has: the directory is locked
for the executor's life, every result is journalled (CRC-checked) and flushed before its future
resolves, and instances that wait for people are stored in ``tasks.db`` (``shardflow tasks``
lists and completes them). A service restarted on the same directory reads the journal back
first: submitting an id the directory holds a result for returns that result without running
the instance again, so a retried job is executed once (the same within one session: a
duplicate submitted while the first is in flight shares its future). Only inputs with an
``id`` are recognised; an input without one always runs. A waiting instance is answered with
its ``waiting`` record (with the due time of its timer, ``waiting_until``); the executor's
``continue_waiting()`` continues the waiting instances that can go on, as ``shardflow resume``
does (:meth:`EmbeddedRun.ready_to_continue`).
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import asdict
from pathlib import Path
from typing import Any

from shardflow.batch.config import RunConfig
from shardflow.engine.results import Status, parse_line
from shardflow.errors import ConfigError
from shardflow.model.definition import WorkflowDefinition
from shardflow.model.plan import Plan
from shardflow.model.tasks import TIMER
from shardflow.run.errors import JournalDamagedError
from shardflow.run.journal_ledger import JournalLedger, instance_key
from shardflow.run.journal_state import RETRY, verified
from shardflow.run.record import RunRecord, new_run_id
from shardflow.run.rundir import RunDir, check_new_run_dir
from shardflow.run.timer_watch import fire_due
from shardflow.store.journal import Damage, SeqSet, cut_torn_tail
from shardflow.store.tasks import WaitingInstance

EMBEDDED_INPUT = {"embedded": True}
"""``run.json``'s input of an executor's run: submissions, not a file to read again."""
_WAITING = int(Status.WAITING)


class EmbeddedRun:
    """A locked run directory, its ledger, and the final results it already holds."""

    def __init__(self, run_dir: RunDir, ledger: JournalLedger, finished: dict[str, bytes],
                 next_seq: int, ended: set[int] | None = None) -> None:
        self.run_dir = run_dir
        self.ledger = ledger
        self.next_seq = next_seq
        """The first seq this session may give a submission (after every journalled one)."""
        self._finished = finished
        self.continuing: set[int] = set()
        """Seqs of the waiting instances continued in this session, their result not in yet."""
        self._ended = ended if ended is not None else set()
        """Seqs journalled ``waiting`` and then final: ended, whatever the store says (a
        crash between the final record and the store's ``finished`` mark)."""

    @classmethod
    def open(cls, path: Path, target: str, definition: WorkflowDefinition,
             config: RunConfig) -> EmbeddedRun:
        """Create the run directory, or reopen one an executor of the same workflow made."""
        if (path / "run.json").exists():
            run_dir = RunDir.open(path)
            try:
                _check_same(run_dir.record, path, target, definition)
                finished, done, next_seq, ended = _read_back(run_dir)
            except BaseException:
                run_dir.close()
                raise
        else:
            check_new_run_dir(path)
            record = RunRecord(run_id=new_run_id(), target=target,
                               workflow=definition.fingerprint(), input=dict(EMBEDDED_INPUT),
                               output=None, stream=True, config=asdict(config))
            run_dir = RunDir.create(path, record)
            finished, done, next_seq, ended = {}, SeqSet(), 0, set()
        return cls(run_dir, run_dir.ledger(definition, done), finished, next_seq, ended)

    def recorded(self, instance_id: Any) -> bytes | None:
        """The latest journalled result line of ``instance_id`` (typed: ``1`` is not ``"1"``)."""
        return self._finished.get(instance_key(instance_id))

    def remember(self, instance_id: Any, line: bytes) -> None:
        """``line`` is now the latest result of ``instance_id`` (journalled by the caller)."""
        self._finished[instance_key(instance_id)] = line

    def waiting_until(self, instance_id: Any) -> float | None:
        """When the earliest open timer of waiting ``instance_id`` is due (None: it waits on
        no timer, only on people or webhooks)."""
        waiting = self.run_dir.task_store().get_waiting(instance_key(instance_id))
        due = [t.due_at for t in waiting.tasks if t.kind == TIMER and not t.completed
               and t.due_at is not None] if waiting is not None else []
        return min(due) if due else None

    def next_due(self) -> float | None:
        """When the run's next parked timer is due."""
        return self.run_dir.task_store().next_due(TIMER)

    def ready_to_continue(self, plan: Plan, at: float, busy: Container[int]
                          ) -> tuple[list[WaitingInstance], list[int]]:
        """Fire the timers of ``plan`` due at wall time ``at``; return the waiting instances
        that can go on now (every task completed) and are not being continued, and the seqs
        of those that could but are ``busy`` (submitted, their ``waiting`` record not
        journalled yet: records stay in order, so they go on once it is). An instance the
        journal says ended is marked finished instead (as ``resume`` does)."""
        store = self.run_dir.task_store()
        fire_due(store, plan, at)
        ready, later = [], []
        for waiting in store.ready_instances():
            if waiting.seq in self._ended:
                store.mark_finished([waiting.instance_id])
            elif waiting.seq in busy:
                later.append(waiting.seq)
            elif waiting.seq not in self.continuing:
                ready.append(waiting)
        self.continuing.update(w.seq for w in ready)
        self.ledger.add_resumed(ready)
        return ready, later

    def continued(self, seq: int, line: bytes) -> None:
        """The result of a continued instance is journalled: ``line`` is its latest."""
        self.continuing.discard(seq)
        record = parse_line(line)
        if record["status"] != "waiting":
            self._ended.add(seq)
        if _submitted_id(record):
            self.remember(record["id"], line)

    def close(self) -> None:
        """Flush and close the journal, then drop the lock."""
        try:
            self.ledger.close()
        finally:
            self.run_dir.close()


def _check_same(record: RunRecord, path: Path, target: str, definition: WorkflowDefinition) -> None:
    if record.input != EMBEDDED_INPUT:
        raise ConfigError("run_dir", f"{path} holds a 'shardflow run' of {record.target!r}; "
                          "continue it with 'shardflow resume', or give the executor a "
                          "directory of its own")
    if record.workflow != definition.fingerprint():
        raise ConfigError("run_dir", f"{path} was made for workflow {record.target!r} "
                          f"({record.workflow}); this executor runs {target!r} "
                          f"({definition.fingerprint()}): give it a directory of its own")


def _submitted_id(record: dict[str, Any]) -> bool:
    """True if ``record``'s id is one its input gave (its context, which starts as the
    input, still holds it); an input without one was given its seq as id, which must never
    answer a later input whose id happens to be that number."""
    context = record["context"]
    return (isinstance(context, dict) and "id" in context and context["id"] == record["id"]
            and type(context["id"]) is type(record["id"]))


def _read_back(run_dir: RunDir) -> tuple[dict[str, bytes], SeqSet, int, set[int]]:
    """The latest result line of each instance submitted with an ``id``
    (:func:`_submitted_id`), the journalled seqs, the next free seq, and the seqs journalled
    ``waiting`` and then final, in one pass. A damaged
    entry stops the executor (as it stops ``resume``): nothing runs twice because a record
    was unreadable. A torn last line (a crash mid-write) is cut off, as resume does."""
    finished: dict[str, bytes] = {}
    done = SeqSet()
    next_seq = 0
    waited: set[int] = set()
    ended: set[int] = set()
    torn = False
    for item in verified(run_dir.journal_path):
        if isinstance(item, Damage):
            if not item.torn:
                raise JournalDamagedError(run_dir.journal_path, item.number, item.reason, 0)
            torn = True
            continue
        if item.status == RETRY:  # only 'resume --retry-failed' writes these
            continue
        done.add(item.seq)
        next_seq = max(next_seq, item.seq + 1)
        if item.status == _WAITING:
            waited.add(item.seq)
        elif item.seq in waited:
            ended.add(item.seq)
        record = parse_line(item.line)
        if _submitted_id(record):
            key = instance_key(record["id"])
            if item.status != _WAITING or key not in finished:
                finished[key] = item.line
    if torn:
        cut_torn_tail(run_dir.journal_path)
    return finished, done, next_seq, ended
