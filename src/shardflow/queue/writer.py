"""ResultWriter: the consumer's writes to Redis -- each result with its events (when asked),
its dedup marker and its ``XACK``, each dead letter with its ``XACK`` -- one Lua script per
batch (:mod:`shardflow.queue.scripts`), retried through the broker while Redis is away."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from shardflow.metrics.registry import Metrics
from shardflow.queue import scripts
from shardflow.queue.broker import Broker
from shardflow.queue.settings import ConsumerSettings

_log = logging.getLogger("shardflow")
_WRITE_BATCH = 512
"""Most results one script call writes (a bigger call holds Redis up longer)."""


@dataclass(slots=True)
class ConsumeOutcome:
    """What one consumer did, for its last log line and its exit code."""

    results: int = 0
    """Results this consumer wrote (a duplicate it found already written is not counted)."""
    dead_letters: int = 0
    redeliveries: int = 0
    unacknowledged: int = 0
    """Messages still in flight when the grace period ended (they will be delivered again)."""
    interrupted: bool = False


class ResultWriter:
    """Writes what is queued on :attr:`results` and by :meth:`dead_letter` when woken
    (:attr:`wake`); tells ``acknowledged`` which messages are done."""

    def __init__(self, broker: Broker, settings: ConsumerSettings, metrics: Metrics,
                 outcome: ConsumeOutcome, acknowledged: Callable[[list[str]], None]) -> None:
        self.broker = broker
        self.settings = settings
        self.metrics = metrics
        self.outcome = outcome
        self.acknowledged = acknowledged
        self.results: list[tuple[str, bytes, bytes]] = []
        """(message id, result line, its events as JSONL or empty) not written yet, in
        arrival order."""
        self.dead: list[tuple[str, bytes, int]] = []
        self.wake = asyncio.Event()
        self._ack = broker.client.register_script(scripts.ACK_WITH_RESULTS)
        self._dead_letter = broker.client.register_script(scripts.DEAD_LETTER)

    def dead_letter(self, message_id: str, data: bytes, deliveries: int) -> None:
        self.dead.append((message_id, data, deliveries))
        self.wake.set()

    async def run(self) -> None:
        s, call = self.settings, self.broker.call
        keys = [s.stream, s.results_stream, s.done_key]
        if s.events_stream is not None:
            keys.append(s.events_stream)
        head: list[Any] = [s.group, int(s.dedup_seconds * 1000), s.events_maxlen or 0]
        while True:
            await self.wake.wait()
            self.wake.clear()
            while self.results:
                batch = self.results[:_WRITE_BATCH]
                args = list(head)
                for message_id, line, events in batch:
                    args += (message_id, line)
                    args += _event_args(events)
                self.outcome.results += int(await call(functools.partial(self._ack, keys, args)))
                del self.results[:len(batch)]
                self.acknowledged([message_id for message_id, _, _ in batch])
            while self.dead:
                await self._write_dead(*self.dead[0])
                self.dead.pop(0)

    async def _write_dead(self, message_id: str, data: bytes, times: int) -> None:
        s = self.settings
        error = (f"delivered {times} times (more than --max-deliveries {s.max_deliveries}) "
                 "without a result: each consumer that took it stopped (killed, crashed "
                 "or cut off from Redis) before finishing it")
        written = int(await self.broker.call(functools.partial(
            self._dead_letter, [s.stream, s.dead_stream, s.done_key],
            [s.group, message_id, data, times, error, s.consumer])))
        if written:
            self.outcome.dead_letters += 1
            self.metrics.dead_letters.inc()
            _log.warning("message %s of %s moved to %s: %s", message_id, s.stream,
                         s.dead_stream, error)
        self.acknowledged([message_id])


def _event_args(events: bytes) -> list[Any]:
    """The script's arguments for one result's events (JSONL): their count, then each one's
    type and record."""
    if not events:
        return [0]
    lines = events.split(b"\n")
    args: list[Any] = [len(lines)]
    for line in lines:
        args += (orjson.loads(line)["event"], line)
    return args
