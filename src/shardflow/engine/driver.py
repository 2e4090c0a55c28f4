"""InstanceDriver: runs a ``LocalExecutionEngine``'s instances in the caller's task, and
cancels them on request.

Why no task per instance: a driver task per instance cost a quarter of the throughput (the
task, its context copy and weak reference stay alive as long as the instance and lengthen
every garbage collection; docs/PERFORMANCE.md). So an instance runs in the task that awaits
``start_workflow`` (or ``complete_human_task``) and a step sees the caller's context
variables; only the second and later branches of a fork get tasks. ``cancel`` cancels the
task running the instance, once, and the driver withdraws exactly that request
(``Task.uncancel``, as ``asyncio.timeout`` does): the caller gets the instance back
``cancelled`` and carries on, while a cancellation of the caller itself still propagates.

Everything else about how the run ends is :func:`~shardflow.engine.instance.run_instance`'s,
whose two parts (``failure``, ``settle``) the driver calls in its own coroutine (a level less
per instance): the driver records the :class:`~shardflow.engine.instance.Ending` on the
instance.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from shardflow._tasks import current_task_of
from shardflow._types import WorkflowStatus
from shardflow.engine.instance import failure, settle
from shardflow.engine.interpreter import Interpreter
from shardflow.engine.records import WorkflowInstance

_WAITING = WorkflowStatus.WAITING
_COMPLETED = WorkflowStatus.COMPLETED
_FAILED = WorkflowStatus.FAILED
_CANCELLED = WorkflowStatus.CANCELLED

Finish = Callable[[WorkflowInstance, WorkflowStatus], None]
"""Records that an instance ended with a status (the engine's window, tasks and store)."""
Park = Callable[[Interpreter], None]
Waits = Callable[[Interpreter], None]
"""Told of an instance that ended its run waiting (the engine sets its timers' alarms)."""


class InstanceDriver:
    """Drives instances to their end and cancels them; see the module docstring."""

    __slots__ = ("_cancel_requested", "_finish", "_park", "_running", "_stopped", "_waits")

    def __init__(self, finish: Finish, park: Park | None, waits: Waits | None = None) -> None:
        self._finish = finish
        self._park = park
        self._waits = waits
        self._running: dict[str, asyncio.Task[Any]] = {}
        """instance id -> the task running it: what :meth:`cancel` cancels"""
        self._stopped: dict[str, asyncio.Future[None]] = {}
        """instance id -> a future :meth:`cancel` waits on, set once the instance unwound"""
        self._cancel_requested: set[str] = set()

    async def drive(self, instance: WorkflowInstance, interpreter: Interpreter,
                    work: Awaitable[None]) -> None:
        """Run ``work`` (``interpreter`` running or resuming ``instance``) in the current task,
        and record how it ended on ``instance``."""
        loop = asyncio.get_running_loop()
        task = current_task_of(loop)
        if task is None:  # driven outside any task: give it one, so it can be cancelled
            await loop.create_task(self.drive(instance, interpreter, work))
            return
        instance_id = instance.id
        context = instance.context
        self._running[instance_id] = task
        try:
            # run_instance's two parts, in this coroutine: one coroutine level less per
            # instance (every resumption passes each level)
            try:
                await work
            except BaseException as exc:
                ending = failure(exc, context, "<engine>")
            else:
                ending = settle(interpreter, context, self._park)
        except asyncio.CancelledError:
            self._finish(instance, _CANCELLED)
            if self._withdraw_cancel(instance_id, task):
                return
            raise
        except BaseException:  # KeyboardInterrupt, SystemExit: they stop the caller too
            self._finish(instance, _CANCELLED)
            raise
        finally:
            self._running.pop(instance_id, None)
            if self._cancel_requested:
                self._withdraw_cancel(instance_id, task)
            if self._stopped:  # someone waits for a run to stop (cancel, schedule_step)
                stopped = self._stopped.pop(instance_id, None)
                if stopped is not None and not stopped.done():
                    stopped.set_result(None)
        status, final, error = ending
        if final is not None:
            instance.context = final
        if status is _WAITING:
            instance.status = _WAITING
            instance.current_step = next(iter(interpreter.parked), None)
            if self._waits is not None:
                self._waits(interpreter)
            return
        instance.error = error
        instance.current_step = error.step if error is not None else None
        self._finish(instance, status)

    async def cancel(self, instance_id: str) -> bool:
        """Cancel the running ``instance_id`` and return once it has unwound (its ``finally``
        blocks ran); False if no task is running it."""
        running = self._running.get(instance_id)
        if running is None:
            return False
        if instance_id not in self._cancel_requested:  # one request per instance
            self._cancel_requested.add(instance_id)
            running.cancel()
        await self.stopped(instance_id)
        return True

    async def stopped(self, instance_id: str) -> None:
        """Return once the run of ``instance_id`` in progress (or the next one to begin, for
        an instance about to be driven) has stopped (``schedule_step`` waits so, never
        driving an instance twice at once)."""
        stopped = self._stopped.get(instance_id)
        if stopped is None:
            stopped = self._stopped[instance_id] = asyncio.get_running_loop().create_future()
        await asyncio.wait([stopped])

    def _withdraw_cancel(self, instance_id: str, task: asyncio.Task[Any]) -> bool:
        """Take back the cancellation :meth:`cancel` asked of ``task`` for this instance, if
        it did; True if ``task`` then has no cancellation pending (the caller's own)."""
        if instance_id not in self._cancel_requested:
            return False
        self._cancel_requested.discard(instance_id)
        return task.uncancel() == 0
