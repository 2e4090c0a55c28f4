"""A run as an object: its directory, lock, ``run.json``, verified journal, output, resume plan.

The CLI (``shardflow run``/``resume``/``runs``) and the embedding API use this layer; the
coordinator below it only sees the ledger and sink Protocols of :mod:`shardflow.batch`.

For a durable embedding (``BatchExecutor(..., run_dir=...)``), the calls are::

    run_dir = RunDir.create(path, record)        # or RunDir.open(path): locked, validated
    state = read_state(run_dir.journal_path)     # state.done: seqs to skip
    ledger = run_dir.ledger(definition, state.done)   # journal results: ledger.record_batch(...)
    ...
    ledger.close(); run_dir.close()
"""

from shardflow.run.errors import (
    EXIT_BROKEN_PIPE,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_STORAGE,
    EXIT_TERMINATED,
    EXIT_USAGE,
    JournalDamagedError,
    OutputError,
    RunLockedError,
    RunRecordError,
    StorageError,
)
from shardflow.run.journal_ledger import JournalLedger
from shardflow.run.journal_state import JournalState, read_state
from shardflow.run.record import RunRecord
from shardflow.run.resume import ResumeRequest, resume_run
from shardflow.run.rundir import RunDir
from shardflow.run.session import Hooks, RunResult
from shardflow.run.start import RunRequest, start_run

__all__ = [
    "EXIT_BROKEN_PIPE",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_STORAGE",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "Hooks",
    "JournalDamagedError",
    "JournalLedger",
    "JournalState",
    "OutputError",
    "ResumeRequest",
    "RunDir",
    "RunLockedError",
    "RunRecord",
    "RunRecordError",
    "RunRequest",
    "RunResult",
    "StorageError",
    "read_state",
    "resume_run",
    "start_run",
]
