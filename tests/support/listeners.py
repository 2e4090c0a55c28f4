"""A listener that ignores everything: test listeners override only the events they check."""

from __future__ import annotations

from typing import Any

from shardflow.batch.jobs import Job


class QuietListener:
    def on_batch(self, jobs: list[Job], rows: list[list[Any]], lines: list[bytes]) -> None:
        pass

    def on_parked(self, parked: list[tuple[Job, bytes]]) -> None:
        pass

    def on_events(self, events: list[tuple[Job, bytes]]) -> None:
        pass

    def on_settled(self) -> None:
        pass

    def on_stopped(self, error: BaseException) -> None:
        pass
