"""The errors of a run and the exit codes they end with.

    ShardflowError
    ├── RunLockedError        another process holds the run directory (``.run_dir``, ``.pid``)
    ├── RunRecordError        ``run.json`` is damaged, tampered with or not ours (``.path``, ``.key``)
    ├── JournalDamagedError   a journal entry before the last is damaged (``.path``, ``.line``)
    ├── OutputError           ``--output`` cannot be used as given (``.path``)
    └── StorageError          a file of the run could not be written (``.path``, ``.errno``): exit 3

Every one but :class:`StorageError` is an ordinary error (exit 2) raised before anything runs.
"""

from __future__ import annotations

import errno as errno_names
import os
from pathlib import Path

from shardflow.errors import ShardflowError

EXIT_OK = 0
"""Every instance completed, or waits for people."""
EXIT_FAILED = 1
"""Some instances failed or had invalid input (the run itself went to its end)."""
EXIT_USAGE = 2
"""A usage, config, input or run-directory error: nothing ran."""
EXIT_STORAGE = 3
"""The run itself could not go on: its output, journal or task store could not be written."""
EXIT_PARKED = 75
"""The run went to its end with timers still parked, due later than ``--wait-timers``
(sysexits' ``EX_TEMPFAIL``: try again later): ``shardflow resume`` continues them once due."""
EXIT_INTERRUPTED = 130
"""SIGINT (Ctrl-C): what was journalled is kept; ``shardflow resume`` continues the run."""
EXIT_BROKEN_PIPE = 141
"""The output's reader went away (``shardflow run ... | head``), like ``yes | head``."""
EXIT_TERMINATED = 143
"""SIGTERM: like SIGINT, the run can be resumed."""


class RunLockedError(ShardflowError):
    def __init__(self, run_dir: Path, pid: int | None) -> None:
        self.run_dir = run_dir
        self.pid = pid
        holder = f"process {pid}" if pid else "another process"
        super().__init__(f"run {run_dir} is in use by {holder} (a run, a resume or an "
                         "embedded executor); wait for it to end")


class RunRecordError(ShardflowError):
    def __init__(self, path: Path, message: str, key: str | None = None) -> None:
        self.path = path
        self.key = key
        where = f"{path}: key {key!r}: " if key else f"{path}: "
        super().__init__(where + message)


class JournalDamagedError(ShardflowError):
    def __init__(self, path: Path, line: int, reason: str, more: int) -> None:
        self.path = path
        self.line = line
        also = f" (and {more} more damaged line{'s' * (more != 1)})" if more else ""
        super().__init__(f"{path}:{line}: {reason}{also}; nothing was changed. "
                         "'shardflow resume --repair' keeps every intact entry and re-runs "
                         "the instances of the damaged ones")


class OutputError(ShardflowError):
    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"output {path}: {message}")


class StorageError(ShardflowError):
    """A write to the output, the journal or the task store failed (a full disk, a file size
    limit, an I/O error). What was journalled is kept; resume after making room."""

    exit_code = EXIT_STORAGE

    def __init__(self, path: str, code: int | None, reason: str | None = None) -> None:
        self.path = path
        self.errno = code
        if code:
            text = f"{reason or os.strerror(code)} ({errno_names.errorcode.get(code, code)})"
        else:
            text = reason or "write failed"
        super().__init__(f"cannot write {path}: {text}")

    @classmethod
    def of(cls, exc: BaseException, path: str) -> StorageError:
        """``exc`` (an ``OSError``, or the task store's own error) writing ``path``."""
        if isinstance(exc, OSError):
            return cls(str(exc.filename or path), exc.errno, exc.strerror)
        return cls(path, None, str(exc))
