"""The Gate protocol: what the engine asks before and after a throttled step runs.

The engine only knows this protocol; an in-process gate (asyncio semaphores and token buckets)
and the batch executor's cross-process gate implement it.
"""

from __future__ import annotations

from typing import Protocol


class Gate(Protocol):
    async def enter(self, limits: tuple[str, ...], rate_limit: str | None) -> None:
        """Wait for a slot of every limit in ``limits`` (sorted) and a token of ``rate_limit``."""
        ...

    def leave(self, limits: tuple[str, ...]) -> None:
        """Give back the slots taken by :meth:`enter`."""
        ...
