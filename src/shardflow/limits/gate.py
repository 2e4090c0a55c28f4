"""The Gate protocol: what the engine asks before and after a throttled step runs.

The engine only knows this protocol; the in-process gate (:mod:`shardflow.limits.local`) and
the batch workers' gate, whose slots are granted by the coordinator for all workers at once,
implement it.
"""

from __future__ import annotations

from typing import Any, Protocol


class Gate(Protocol):
    async def enter(self, limits: tuple[str, ...], rate_limit: str | None) -> Any:
        """Wait for a slot of every limit in ``limits`` (all at once) and then a start time
        allowed by ``rate_limit``; return a token for :meth:`leave`."""
        ...

    def leave(self, token: Any) -> None:
        """Give back the slots taken by :meth:`enter`."""
        ...
