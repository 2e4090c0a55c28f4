"""The task running on a loop, as cheaply as this Python allows.

Its own module, apart from ``_loop`` (which imports uvloop): the engine asks for the current
task once per instance, and ``import shardflow`` must not load an event loop it may not use.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import Any


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
