"""Alarms for the parked timers of an in-process engine (``LocalExecutionEngine``).

A long timer parks its instance with a task due when it fires (``engine/passive.py``). While
the engine that parked it runs, an alarm sleeps on the engine's clock until then and completes
the task, so the instance goes on by itself (tests advance a ``FakeClock``). An engine that
restarts from its task store calls ``fire_due_timers`` once: it fires the timers that came due
while it was down and arms the others. A batch run's timers are continued by ``shardflow
resume``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from shardflow._clock import Clock
from shardflow.engine.interpreter import Interpreter
from shardflow.engine.passive import is_timer
from shardflow.engine.task_index import TaskIndex
from shardflow.errors import TaskAlreadyCompletedError, TaskNotFoundError

_log = logging.getLogger("shardflow.engine")


class TimerAlarms:
    """One sleeping alarm per open timer task; ``fire(task_id)`` completes the task."""

    __slots__ = ("_armed", "_clock", "_fire")

    def __init__(self, clock: Clock, fire: Callable[[str], Awaitable[Any]]) -> None:
        self._clock = clock
        self._fire = fire
        self._armed: dict[str, asyncio.Task[None]] = {}

    def arm(self, interpreter: Interpreter, tasks: TaskIndex) -> None:
        """Set an alarm for every open timer task of ``interpreter``'s parked nodes."""
        for node, parked in interpreter.parked.items():
            if not is_timer(interpreter.plan, node):
                continue
            for task_id in parked.tasks:
                task = tasks.get(task_id)
                if task is None or task.completed or task.due_at is None or task_id in self._armed:
                    continue
                # on the clock's time line, fixed now: the alarm task starts later
                when = self._clock.now() + max(task.due_at - time.time(), 0.0)
                self._armed[task_id] = asyncio.ensure_future(self._ring(task_id, when))

    async def _ring(self, task_id: str, when: float) -> None:
        try:
            delay = when - self._clock.now()
            if delay > 0:  # a clock's sleep(0) may wait for its next tick (FakeClock does)
                await self._clock.sleep(delay)
            del self._armed[task_id]
            await self._fire(task_id)
        except (TaskNotFoundError, TaskAlreadyCompletedError):
            pass  # completed early by hand, or its instance was cancelled: nothing to fire
        except Exception:  # the instance records its own failure; this is the engine's
            _log.exception("firing timer task %s failed", task_id)
