"""EventRelay: hands the events batch workers send to the embedding process's event bus.

Workers record each instance's events as JSONL (``engine/observe.Recorder``) and send them
just before its result. The relay turns each line back into the bus's
``emit(event_type, **fields)`` (the instance id as the submission spelled it, times as
``datetime``), and publishes batches one after another, in arrival order, on one chain of
tasks: an instance's events reach subscribers in the order they happened, and
:meth:`EventRelay.then` runs a callback (resolving results' futures) only once every event
received before it was published, awaited subscribers included.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

import orjson

from shardflow.batch.jobs import Job
from shardflow.engine.observe import Emitter

_TIMES = ("timestamp", "due_at")


class EventRelay:
    """Publishes workers' events to ``bus``, in order; see the module docstring."""

    def __init__(self, bus: Emitter) -> None:
        self.bus = bus
        self._tail: asyncio.Task[None] | None = None

    def __call__(self, events: list[tuple[Job, bytes]]) -> None:
        decoded = [_fields(job, line) for job, blob in events for line in blob.split(b"\n")]
        self._chain(self._publish(decoded))

    def then(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the events received so far are published."""
        if self._tail is None or self._tail.done():
            callback()
        else:
            self._chain(_call(callback))

    async def drain(self) -> None:
        """Return once every event received is published."""
        while self._tail is not None and not self._tail.done():
            await asyncio.shield(self._tail)

    def _chain(self, step: Coroutine[Any, Any, None]) -> None:
        previous = self._tail
        self._tail = asyncio.get_running_loop().create_task(_after(previous, step))

    async def _publish(self, decoded: list[dict[str, Any]]) -> None:
        emit = self.bus.emit
        for fields in decoded:
            await emit(fields.pop("event"), **fields)


def _fields(job: Job, line: bytes) -> dict[str, Any]:
    fields: dict[str, Any] = orjson.loads(line)
    fields["instance_id"] = job.id
    for name in _TIMES:
        value = fields.get(name)
        if isinstance(value, str):
            fields[name] = datetime.fromisoformat(value)
    return fields


async def _after(previous: asyncio.Task[None] | None,
                 step: Coroutine[Any, Any, None]) -> None:
    if previous is not None:
        await asyncio.wait([previous])
    await step


async def _call(callback: Callable[[], None]) -> None:
    callback()
