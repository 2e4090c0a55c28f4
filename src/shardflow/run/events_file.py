"""EventsFile: ``shardflow run --events FILE`` -- the instances' lifecycle events, as JSONL.

Each line is one event as :meth:`shardflow.events.WorkflowEvent.to_dict` spells it
(``{"event": "step.completed", "instance_id": ..., "timestamp": ..., "step_name": ...}``),
each instance's in the order they happened. The file is appended to, never replaced: a
resumed run adds its events after the first session's.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from shardflow.batch.jobs import Job
from shardflow.run.errors import StorageError


class EventsFile:
    """Appends jobs' events (as workers send them: JSONL per job) to ``path``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file: BinaryIO = self.path.open("ab", buffering=0)
        """unbuffered: each batch is written when it arrives, and a failed write is not
        tried again when the file is closed"""

    def __call__(self, events: list[tuple[Job, bytes]]) -> None:
        """Write the events; a failed write is a :class:`StorageError` naming the file,
        which stops the run (exit 3)."""
        data = memoryview(b"".join(blob + b"\n" for _, blob in events))
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
