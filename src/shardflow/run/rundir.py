"""The run directory: a run's ``run.json``, journal, task store, summary and lock.

``.shardflow/runs/<run-id>/`` (or ``--run-dir``) holds ``run.json`` (see
:mod:`shardflow.run.record`), ``journal.jsonl`` (every finished instance, checksummed),
``tasks.db`` (waiting instances and human tasks), ``summary.json`` and ``run.lock``. The
directory is created 0700 and its files 0600: the journal and the task store hold every
input and context of the run.
"""

from __future__ import annotations

import os
from pathlib import Path

from shardflow.errors import ConfigError
from shardflow.model.definition import WorkflowDefinition
from shardflow.run.errors import RunRecordError
from shardflow.run.journal_ledger import JournalLedger
from shardflow.run.lock import RunLock
from shardflow.run.record import RunRecord, parse_record, write_private
from shardflow.store.journal import FileJournal, SeqSet
from shardflow.store.tasks import SQLiteTaskStore, WaitingInstance

DEFAULT_BASE = Path(".shardflow") / "runs"
LAST_RUN = Path(".shardflow") / "last-run"
"""Where the newest run of this directory is (``shardflow tasks`` looks there first)."""
KNOWN_RUNS = Path(".shardflow") / "known-runs"
"""Runs started here in a ``--run-dir`` outside :data:`DEFAULT_BASE`, one absolute path a
line: ``shardflow runs list`` shows them beside the runs under the base."""


class RunDir:
    """One run's directory, locked by this process; ``record`` is its ``run.json``."""

    def __init__(self, path: Path, record: RunRecord, lock: RunLock) -> None:
        self.path = path
        self.record = record
        self._lock = lock
        self._tasks: SQLiteTaskStore | None = None

    @classmethod
    def create(cls, path: Path | None, record: RunRecord) -> RunDir:
        """Make the directory (0700), lock it, write ``run.json``. The caller has checked
        that the place is usable (:func:`check_new_run_dir`)."""
        target = path or DEFAULT_BASE / record.run_id
        target.parent.mkdir(parents=True, exist_ok=True)
        target.mkdir(mode=0o700, exist_ok=True)
        lock = RunLock(target).acquire()
        if (target / "run.json").exists():  # another run took the place meanwhile
            lock.release()
            check_new_run_dir(target)
        run_dir = cls(target, record, lock)
        run_dir.save()
        LAST_RUN.parent.mkdir(parents=True, exist_ok=True)
        LAST_RUN.write_text(str(target.resolve()))
        _remember(target)
        return run_dir

    @classmethod
    def open(cls, path: Path) -> RunDir:
        """Lock the run in ``path`` and read its ``run.json``, which must be valid and ours."""
        file = path / "run.json"
        if not file.is_file():
            raise RunRecordError(file, f"{path} is not a shardflow run directory (no run.json)")
        owner = file.stat().st_uid
        if owner != os.getuid():
            raise RunRecordError(file, f"owned by uid {owner}, not by you (uid {os.getuid()}); "
                                 "resume only your own runs: resuming imports the workflow "
                                 "that run.json names")
        lock = RunLock(path).acquire()
        try:
            record = parse_record(file, file.read_bytes())
        except BaseException:
            lock.release()
            raise
        return cls(path, record, lock)

    def save(self) -> None:
        write_private(self.path / "run.json", self.record.to_json())

    @property
    def journal_path(self) -> Path:
        return self.path / "journal.jsonl"

    @property
    def summary_path(self) -> Path:
        return self.path / "summary.json"

    @property
    def tasks_path(self) -> Path:
        return self.path / "tasks.db"

    def task_store(self) -> SQLiteTaskStore:
        if self._tasks is None:
            self._tasks = SQLiteTaskStore(self.tasks_path)
        return self._tasks

    def ledger(self, definition: WorkflowDefinition, done: SeqSet,
               resumed: list[WaitingInstance] | None = None) -> JournalLedger:
        """The ledger a coordinator journals this run's results with (``done``: the seqs an
        earlier session journalled; ``resumed``: the waiting instances continued now)."""
        return JournalLedger(FileJournal(self.journal_path), self.task_store, definition.name,
                             definition.version, done, resumed=resumed)

    def close(self) -> None:
        """Close the task store and drop the lock."""
        if self._tasks is not None:
            self._tasks.close()
            self._tasks = None
        self._lock.release()


def check_new_run_dir(path: Path) -> None:
    """Refuse a run directory that holds a run, or whose nearest existing parent is not a
    writable directory, before anything is created."""
    if (path / "run.json").exists():
        raise ConfigError("run_dir", f"{path} already holds a run; resume it with "
                          f"'shardflow resume {path}' or choose another --run-dir")
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError("run_dir", f"{existing} is not a directory (run directory {path})")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError("run_dir", f"cannot create run directory {path}: {existing} is "
                          "not writable")


def _remember(path: Path) -> None:
    """Note a run directory outside the default base in :data:`KNOWN_RUNS`."""
    resolved = path.resolve()
    if resolved.is_relative_to(DEFAULT_BASE.resolve()) or resolved in known_run_dirs():
        return
    with open(KNOWN_RUNS, "a") as fh:
        fh.write(f"{resolved}\n")


def known_run_dirs() -> list[Path]:
    """The ``--run-dir`` runs started here that still exist (see :data:`KNOWN_RUNS`)."""
    try:
        lines = KNOWN_RUNS.read_text().splitlines()
    except OSError:
        return []
    return [Path(line) for line in dict.fromkeys(lines) if line and (Path(line) / "run.json").is_file()]


def run_dirs(base: Path = DEFAULT_BASE) -> list[Path]:
    """The run directories under ``base``, newest first."""
    if not base.is_dir():
        return []
    runs = [p for p in base.iterdir() if (p / "run.json").is_file()]
    return sorted(runs, key=lambda p: p.stat().st_mtime, reverse=True)


def latest_run_dirs(base: Path = DEFAULT_BASE) -> list[Path]:
    """The last run started here, then the run directories under ``base``, newest first."""
    found: list[Path] = []
    if LAST_RUN.exists():
        last = Path(LAST_RUN.read_text().strip())
        if (last / "run.json").exists():
            found.append(last)
    found += run_dirs(base)
    unique: list[Path] = []
    for path in found:
        if path.resolve() not in [u.resolve() for u in unique]:
            unique.append(path)
    return unique
