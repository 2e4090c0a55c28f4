"""The workers' gate: limit slots and rate-limited starts granted by the coordinator.

Requests and releases made in one loop iteration go out in one frame; a grant frame wakes
the waiting steps. A step cancelled while it waits withdraws its request.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

from shardflow.batch import protocol as p


class RemoteGate:
    """Implements :class:`shardflow.limits.gate.Gate` for a worker process."""

    def __init__(self, write: Callable[[bytes], None]) -> None:
        self._write = write
        self._ids = itertools.count()
        self._waiting: dict[int, asyncio.Future[None]] = {}
        self._acquire: list[list[Any]] = []
        self._release: list[int] = []
        self._flush_scheduled = False

    async def enter(self, limits: tuple[str, ...], rate_limit: str | None) -> Any:
        rid = next(self._ids)
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = granted
        self._acquire.append([rid, limits, rate_limit])
        self._schedule()
        try:
            await granted
        except BaseException:
            self._waiting.pop(rid, None)
            self.leave(rid)
            raise
        return rid

    def leave(self, token: Any) -> None:
        self._release.append(token)
        self._schedule()

    def on_grant(self, rids: list[int]) -> None:
        for rid in rids:
            future = self._waiting.pop(rid, None)
            if future is not None and not future.done():
                future.set_result(None)

    def _schedule(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._acquire:
            self._write(p.json_frame(p.ACQUIRE, self._acquire))
            self._acquire = []
        if self._release:
            self._write(p.json_frame(p.RELEASE, self._release))
            self._release = []
