"""The run lock: one process at a time works on a run directory.

Two ``shardflow resume`` of one run, or a resume beside the live run, would run every
remaining instance twice. ``fcntl.flock`` on ``run.lock`` is taken before anything is read and
held until the process ends; the kernel drops it when the process dies, however it dies, so a
``kill -9`` never leaves a stale lock. The holder's pid is written into the file only to name
it in the refusal; the lock itself is the flock, not the file's content.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from shardflow.run.errors import RunLockedError

LOCK_NAME = "run.lock"
_TRIES = 20


class RunLock:
    """Held from :meth:`acquire` to :meth:`release` (or the end of the process). The file
    descriptor is not inherited by worker processes (Python opens it close-on-exec)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        fd = os.open(self.run_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        for attempt in range(_TRIES):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                # The holder may be a probe (:func:`holder`, ``runs list``), which lets go
                # within microseconds: look again for up to 0.1 s before refusing. A run,
                # a resume or an executor holds it for its whole life.
                if attempt == _TRIES - 1:
                    holder = _pid(fd)
                    os.close(fd)
                    raise RunLockedError(self.run_dir, holder) from None
                time.sleep(0.005)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor drops the flock
            self._fd = None


def _pid(fd: int) -> int | None:
    text = os.pread(fd, 32, 0).strip()
    return int(text) if text.isdigit() else None


def holder(run_dir: Path) -> int | None:
    """The pid of the process that holds ``run_dir`` now, or ``None`` when it is free
    (``shardflow runs list`` shows live runs as running)."""
    path = run_dir / LOCK_NAME
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _pid(fd) or -1
        return None
    finally:
        os.close(fd)
