"""The event loop every shardflow process runs on: uvloop where it installs, asyncio's own
elsewhere.

uvloop is faster (about a fifth more instances per second in a worker) but does not build on
Windows, so it is an optional dependency there (``sys_platform != 'win32'`` in
``pyproject.toml``): nothing may import it directly, everything goes through :data:`EventLoop`
and :func:`run`.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

T = TypeVar("T")

if TYPE_CHECKING:
    EventLoop = asyncio.SelectorEventLoop
else:
    try:
        from uvloop import Loop as EventLoop
    except ImportError:  # Windows, or an install without uvloop
        EventLoop = asyncio.ProactorEventLoop if sys.platform == "win32" else asyncio.SelectorEventLoop


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on a new :data:`EventLoop`."""
    with asyncio.Runner(loop_factory=EventLoop) as runner:
        return runner.run(main)
