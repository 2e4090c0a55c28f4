"""What the coordinator needs from a run's durable side (journal and task store).

The implementation is :class:`shardflow.run.journal_ledger.JournalLedger` (the run layer owns the
run directory); the coordinator, one layer below, only knows this Protocol.
"""

from __future__ import annotations

from typing import Protocol

from shardflow.batch.jobs import Job
from shardflow.engine.rows import ResultRow
from shardflow.store.journal import JournalStore, SeqSet


class RunLedger(Protocol):
    @property
    def journal(self) -> JournalStore:
        """Where results are journalled (a failed write is reported with its path)."""

    done: SeqSet
    """Input positions journalled by an earlier session: the coordinator skips them."""

    def record_batch(self, jobs: list[Job], header: list[ResultRow], lines: list[bytes]) -> None: ...

    def parked(self, items: list[tuple[Job, bytes]]) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...
