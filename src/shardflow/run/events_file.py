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


class EventsFile:
    """Appends jobs' events (as workers send them: JSONL per job) to ``path``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file: BinaryIO = self.path.open("ab")

    def __call__(self, events: list[tuple[Job, bytes]]) -> None:
        write = self._file.write
        for _, blob in events:
            write(blob)
            write(b"\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> EventsFile:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
