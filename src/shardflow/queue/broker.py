"""The consumer's one connection to Redis, and what happens when Redis goes away.

Every call goes through :meth:`Broker.call`: a connection error (Redis restarted, network
down, a timeout) is retried with capped exponential backoff, forever, until the caller is
cancelled. The consumer logs one line when the broker becomes unreachable and one when it is
back, not one per failed call; each return counts in ``shardflow_broker_reconnects_total``.

Retrying is safe because every write the consumer makes is idempotent: the result script
checks the dedup marker, ``XACK`` of an acknowledged message is a no-op, leases are keyed by
their holder.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import BusyLoadingError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shardflow.errors import ConfigError

T = TypeVar("T")
_log = logging.getLogger("shardflow")
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, BusyLoadingError, OSError)
"""What means "Redis is not there now" (``LOADING`` too: a restarted Redis reading its AOF)."""
_FIRST_DELAY = 0.05
MAX_DELAY = 2.0


class Broker:
    """A redis-py asyncio client with reconnection, and whether it is connected now.

    ``socket_timeout`` (30 s, far above the consumer's 1 s blocking reads and any script it
    runs) turns a silent network partition into an error, so it is retried too."""

    def __init__(self, url: str, *, on_reconnect: Callable[[], None] | None = None) -> None:
        self.url = url
        try:
            self.client: aioredis.Redis = aioredis.Redis.from_url(
                url, socket_connect_timeout=2.0, socket_timeout=30.0, socket_keepalive=True)
        except ValueError as exc:
            raise ConfigError("redis", f"{url!r} is not a Redis URL ({exc})") from None
        self.connected = True
        self._on_reconnect = on_reconnect

    async def call(self, make: Callable[[], Awaitable[T]]) -> T:
        """``await make()``, retried with backoff while Redis is unreachable."""
        delay = _FIRST_DELAY
        fresh = False
        while True:
            try:
                result = await make()
            except UNREACHABLE as exc:
                if self.connected and not fresh:
                    # A pooled connection that went stale (Redis restarted since it was last
                    # used) fails once; redis-py dropped it, so try again on a new one first.
                    fresh = True
                    continue
                self._lost(exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_DELAY)
                continue
            if not self.connected:
                self.connected = True
                _log.warning("redis at %s is reachable again", self.url)
                if self._on_reconnect is not None:
                    self._on_reconnect()
            return result

    def _lost(self, exc: BaseException) -> None:
        if self.connected:
            self.connected = False
            _log.warning("redis at %s is unreachable (%s); retrying with backoff up to %g s",
                         self.url, exc or type(exc).__name__, MAX_DELAY)

    async def close(self) -> None:
        await self.client.aclose()


def fields_of(entry: Any) -> dict[bytes, bytes]:
    """The field map of a stream entry as redis-py returns it (``(id, {field: value})``)."""
    return entry[1] or {}
