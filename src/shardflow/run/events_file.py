"""EventsFile: ``shardflow run --events FILE`` -- the instances' lifecycle events, as JSONL.

Each line is one event as :meth:`shardflow.events.WorkflowEvent.to_dict` spells it
(``{"event": "step.completed", "instance_id": ..., "timestamp": ..., "step_name": ...}``),
each instance's in the order they happened. The file is appended to, never replaced: a
resumed run adds its events after the first session's. A last line a crash cut short (no
newline) is kept and ended, so the events appended after it stay one a line; the events it
held are sent again (an instance's result is journalled only after its events are written,
so its run is repeated).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from shardflow.batch.jobs import Job
from shardflow.run.errors import StorageError


class EventsFile:
    """Appends jobs' events (as workers send them: JSONL per job) to ``path``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file: BinaryIO = self.path.open("a+b", buffering=0)
        """unbuffered: each batch is written when it arrives, and a failed write is not
        tried again when the file is closed; readable too, to see how it ends"""
        if _ends_mid_line(self._file.fileno()):
            self._write(memoryview(b"\n"))

    def __call__(self, events: list[tuple[Job, bytes]]) -> None:
        """Write the events; a failed write is a :class:`StorageError` naming the file,
        which stops the run (exit 3)."""
        data = memoryview(b"".join(blob + b"\n" for _, blob in events))
        self._write(data)

    def _write(self, data: memoryview) -> None:
        try:
            while data:
                data = data[self._file.write(data) or 0:]
        except OSError as exc:
            raise StorageError.of(exc, str(self.path)) from None

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> EventsFile:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _ends_mid_line(fd: int) -> bool:
    """The regular file ``fd`` is not empty and its last byte is not a newline."""
    info = os.fstat(fd)
    return (stat.S_ISREG(info.st_mode) and info.st_size > 0
            and os.pread(fd, 1, info.st_size - 1) != b"\n")
