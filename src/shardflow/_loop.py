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
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

T = TypeVar("T")

if TYPE_CHECKING:
    EventLoop = asyncio.SelectorEventLoop
else:
    try:
        from uvloop import Loop as EventLoop
    except ImportError:  # Windows, or an install without uvloop
        EventLoop = asyncio.ProactorEventLoop if sys.platform == "win32" else asyncio.SelectorEventLoop


def _task_of_loop() -> Callable[[asyncio.AbstractEventLoop], asyncio.Task[Any] | None]:
    """``asyncio.current_task(loop)`` as cheaply as this Python allows. On 3.11 the public
    function is written in Python (~1 us a call under load, paid at least once per
    instance), while the answer sits in ``asyncio.tasks._current_tasks`` (loop -> task);
    from 3.12 on the function is C and that table may not be kept."""
    table = getattr(asyncio.tasks, "_current_tasks", None)
    if sys.version_info < (3, 12) and isinstance(table, dict):
        get: Callable[[asyncio.AbstractEventLoop], asyncio.Task[Any] | None] = table.get
        return get
    return asyncio.current_task


current_task_of = _task_of_loop()
"""``current_task_of(loop)``: the task running on ``loop`` now, or None."""


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on a new :data:`EventLoop`."""
    with asyncio.Runner(loop_factory=EventLoop) as runner:
        return runner.run(main)
