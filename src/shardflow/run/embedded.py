"""The run directory of a durable :class:`~shardflow.run.executor.BatchExecutor`.

``BatchExecutor(..., run_dir=path)`` gets what ``shardflow run`` has: the directory is locked
for the executor's life, every result is journalled (CRC-checked) and flushed before its future
resolves, and instances that wait for people are stored in ``tasks.db`` (``shardflow tasks``
lists and completes them). A service restarted on the same directory reads the journal back
first: submitting an id the directory holds a result for returns that result without running
the instance again, so a retried job is executed once (the same within one session: a
duplicate submitted while the first is in flight shares its future). Only inputs with an
``id`` are recognised; an input without one always runs. A waiting instance is answered with
its ``waiting`` record: continuing the waiting instances of an embedded run is not supported
yet (``shardflow tasks`` lists and completes their tasks).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from shardflow.batch.config import RunConfig
from shardflow.engine.results import Status, parse_line
from shardflow.errors import ConfigError
from shardflow.model.definition import WorkflowDefinition
from shardflow.run.errors import JournalDamagedError
from shardflow.run.journal_ledger import JournalLedger, instance_key
from shardflow.run.journal_state import RETRY, verified
from shardflow.run.record import RunRecord, new_run_id
from shardflow.run.rundir import RunDir, check_new_run_dir
from shardflow.store.journal import Damage, SeqSet, cut_torn_tail

EMBEDDED_INPUT = {"embedded": True}
"""``run.json``'s input of an executor's run: submissions, not a file to read again."""
_WAITING = int(Status.WAITING)


class EmbeddedRun:
    """A locked run directory, its ledger, and the final results it already holds."""

    def __init__(self, run_dir: RunDir, ledger: JournalLedger, finished: dict[str, bytes],
                 next_seq: int) -> None:
        self.run_dir = run_dir
        self.ledger = ledger
        self.next_seq = next_seq
        """The first seq this session may give a submission (after every journalled one)."""
        self._finished = finished

    @classmethod
    def open(cls, path: Path, target: str, definition: WorkflowDefinition,
             config: RunConfig) -> EmbeddedRun:
        """Create the run directory, or reopen one an executor of the same workflow made."""
        if (path / "run.json").exists():
            run_dir = RunDir.open(path)
            try:
                _check_same(run_dir.record, path, target, definition)
                finished, done, next_seq = _read_back(run_dir)
            except BaseException:
                run_dir.close()
                raise
        else:
            check_new_run_dir(path)
            record = RunRecord(run_id=new_run_id(), target=target,
                               workflow=definition.fingerprint(), input=dict(EMBEDDED_INPUT),
                               output=None, stream=True, config=asdict(config))
            run_dir = RunDir.create(path, record)
            finished, done, next_seq = {}, SeqSet(), 0
        return cls(run_dir, run_dir.ledger(definition, done), finished, next_seq)

    def recorded(self, instance_id: Any) -> bytes | None:
        """The latest journalled result line of ``instance_id`` (typed: ``1`` is not ``"1"``)."""
        return self._finished.get(instance_key(instance_id))

    def remember(self, instance_id: Any, line: bytes) -> None:
        """``line`` is now the latest result of ``instance_id`` (journalled by the caller)."""
        self._finished[instance_key(instance_id)] = line

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


def _read_back(run_dir: RunDir) -> tuple[dict[str, bytes], SeqSet, int]:
    """The latest result line of each instance submitted with an ``id`` (its context, which
    starts as the input, still holds that id; an input without one was given its seq as id,
    which must never answer a later input whose id happens to be that number), the journalled
    seqs and the next free seq, in one pass. A damaged
    entry stops the executor (as it stops ``resume``): nothing runs twice because a record
    was unreadable. A torn last line (a crash mid-write) is cut off, as resume does."""
    finished: dict[str, bytes] = {}
    done = SeqSet()
    next_seq = 0
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
        record = parse_line(item.line)
        context = record["context"]
        if isinstance(context, dict) and "id" in context and context["id"] == record["id"] \
                and type(context["id"]) is type(record["id"]):
            key = instance_key(record["id"])
            if item.status != _WAITING or key not in finished:
                finished[key] = item.line
    if torn:
        cut_torn_tail(run_dir.journal_path)
    return finished, done, next_seq
