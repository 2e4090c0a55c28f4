"""What a consumer is told: the broker, the stream and group, and how it treats trouble."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field


def default_consumer_name() -> str:
    """``host-pid``: unique per process, so a restarted consumer never takes over the name
    (and the pending messages) of one still running elsewhere."""
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True, slots=True)
class ConsumerSettings:
    redis_url: str
    stream: str
    group: str = "shardflow"
    consumer: str = field(default_factory=default_consumer_name)
    results: str | None = None
    """Default ``<stream>:results``."""
    dead_letter: str | None = None
    """Default ``<stream>:dead``."""
    max_deliveries: int = 5
    claim_idle: float = 30.0
    """Seconds a message may stay unacknowledged with another consumer before it is taken over."""
    burst: bool = False
    grace_seconds: float = 10.0
    read_count: int = 256
    """Most messages one ``XREADGROUP`` asks for."""
    dedup_seconds: float = 7 * 86400.0
    """How long the marker that a message has its result is kept (longer than any message
    may stay pending)."""
    lease_seconds: float = 10.0
    """Lifetime of a limit slot's lease; the holder renews it every third of that."""
    events_stream: str | None = None
    """Stream each instance's lifecycle events are added to, with its result (None: workers
    record no events)."""
    events_maxlen: int | None = None
    """Cap of the events stream (``XADD MAXLEN ~``: Redis trims whole nodes, so it may hold
    somewhat more); None keeps every event."""

    @property
    def results_stream(self) -> str:
        return self.results or f"{self.stream}:results"

    @property
    def dead_stream(self) -> str:
        return self.dead_letter or f"{self.stream}:dead"

    @property
    def done_key(self) -> str:
        """The sorted set of message ids whose result is written (score: when, in ms)."""
        return f"{self.stream}:{self.group}:done"

    def limit_key(self, name: str) -> str:
        return f"{self.stream}:{self.group}:limit:{name}"

    def rate_key(self, name: str) -> str:
        return f"{self.stream}:{self.group}:rate:{name}"
