"""PathScope: the tasks of one instance's paths, with ``asyncio.TaskGroup``'s rules, cheaper.

Why not ``asyncio.TaskGroup`` itself: an instance of a fork/join opens one, and on Python 3.11
its ``__aenter__``/``__aexit__`` coroutines, ``create_task`` checks and task names are pure
Python run once per instance (a measurable share of a notify instance: docs/PERFORMANCE.md).
This class keeps the rules the interpreter relies on, line for line from
``asyncio/taskgroups.py`` (3.11.7):

* a task that fails cancels every running sibling and the parent task (the body), once;
* the parent waits for every task, even while it is being cancelled, and their errors are
  raised as one ``BaseExceptionGroup`` (``KeyboardInterrupt``/``SystemExit`` on their own);
* a cancellation of the parent cancels the tasks and propagates, unless the scope itself asked
  for it (a failed task), in which case the scope withdraws it with ``Task.uncancel``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from shardflow._tasks import current_task_of

_running_loop = asyncio.get_running_loop
_Task = asyncio.Task
_new_object = object.__new__
TASK_NAME = "shardflow path"
"""The name of the task of every path an instance spawns (on a loop without a task factory)."""


class PathScope:
    """Run coroutines as tasks of the current task; :meth:`close` waits for them."""

    __slots__ = ("_aborting", "_base_error", "_errors", "_failing", "_loop", "_parent",
                 "_parent_cancel_requested", "_tasks", "_waiter")

    _loop: asyncio.AbstractEventLoop
    _parent: asyncio.Task[Any]
    _tasks: set[asyncio.Task[Any]]
    """Tasks not finished: of :meth:`create_task` (a done callback each) and of
    :meth:`spawn` (each reports its own end)."""
    _failing: set[asyncio.Task[Any] | None] | None
    """Tasks of :meth:`spawn` that failed, until their failure is handled."""
    _errors: list[BaseException] | None
    """What failed tasks raised; None until one does (no list per instance)."""
    _base_error: BaseException | None
    _aborting: bool
    _parent_cancel_requested: bool
    _waiter: asyncio.Future[None] | None

    @staticmethod
    def for_current_task() -> PathScope:
        """A scope for the paths of an instance the current task runs (static: a classmethod
        binds a method object per call, once per instance)."""
        loop = _running_loop()
        parent = current_task_of(loop)
        if parent is None:
            raise RuntimeError("an instance must run inside an asyncio task")
        # Built here, without a class call and __init__: one scope per instance, and setting
        # the slots directly is the cheaper way (docs/PERFORMANCE.md).
        scope: PathScope = _new_object(PathScope)
        scope._loop = loop
        scope._parent = parent
        scope._tasks = set()
        scope._failing = None
        scope._errors = None
        scope._base_error = None
        scope._aborting = False
        scope._parent_cancel_requested = False
        scope._waiter = None
        return scope

    def create_task(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` as a task of this scope; its end is seen by a done callback."""
        self.spawn(coro).add_done_callback(self._on_task_done)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``coro`` as a task of this scope that reports its own end: it must call
        :meth:`failed` with what it raised (a cancellation excepted) and then, whatever
        happens, :meth:`ended`, as a compiled schedule's task functions do. No done
        callback: a callback is a loop handle and a call more per task.

        The task is made by the loop's task factory if it has one, else directly, named
        :data:`TASK_NAME` (a task left to name itself formats ``Task-N``, and uvloop's
        ``create_task`` adds a call)."""
        if self._aborting:
            coro.close()
            raise RuntimeError("the instance's paths are shutting down")
        loop = self._loop
        task = (_Task(coro, loop=loop, name=TASK_NAME) if loop.get_task_factory() is None
                else loop.create_task(coro))
        self._tasks.add(task)
        return task

    def ended(self) -> None:
        """The task of :meth:`spawn` running now has finished (in its ``finally``)."""
        task = current_task_of(self._loop)
        if self._failing is None or task not in self._failing:  # not failed: _finished, inlined
            tasks = self._tasks
            tasks.discard(task)
            if not tasks:
                waiter = self._waiter
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)

    def failed(self, exc: BaseException) -> None:
        """The task of :meth:`spawn` running now failed with ``exc`` (not a cancellation).

        It is handled on the next loop iteration, as a done callback would be, and the
        task counts as running until then: the siblings are cancelled, and the body sees
        the error, at the same points as with :meth:`create_task` tasks, so compiled and
        interpreted paths stop the same steps."""
        task = current_task_of(self._loop)
        if self._failing is None:
            self._failing = set()
        self._failing.add(task)
        self._loop.call_soon(self._spawned_failed, task, exc)

    async def close(self, exc: BaseException | None) -> None:
        """Wait for every task; ``exc`` is what the body raised (None if it returned).

        Raises what ``TaskGroup.__aexit__`` would: the tasks' (and the body's) errors as a
        ``BaseExceptionGroup``, or the cancellation that should propagate."""
        if not self._tasks and exc is None and not self._errors:
            return  # every task already finished well: nothing to wait for or raise
        cancelled = False
        propagate: BaseException | None = None
        if exc is not None:  # the body raised (the usual close has nothing to classify)
            if isinstance(exc, (SystemExit, KeyboardInterrupt)) and self._base_error is None:
                self._base_error = exc
            cancelled = isinstance(exc, asyncio.CancelledError)
            if cancelled:
                propagate = exc
        if self._parent_cancel_requested and self._parent.uncancel() == 0:
            propagate = None
        if exc is not None and not self._aborting:
            self._abort()
        while self._tasks:
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            except asyncio.CancelledError as again:
                if not self._aborting:
                    propagate = again
                    self._abort()
            self._waiter = None
        if self._base_error is not None:
            raise self._base_error
        if propagate is not None and not self._errors:
            raise propagate
        errors = self._errors
        if exc is not None and not cancelled:
            if not errors:
                errors = []
            errors.append(exc)
        if errors:
            self._errors = None
            raise BaseExceptionGroup("unhandled errors in an instance's paths", errors) from None

    def _abort(self) -> None:
        self._aborting = True
        for task in self._tasks:
            if not task.done():
                # A spawned task cancelled before it ran never reports: its end is seen by
                # this callback (for a create_task task it only repeats what its own does).
                task.add_done_callback(self._on_spawned_done)
                task.cancel()

    def _finished(self, task: asyncio.Task[Any] | None) -> None:
        self._tasks.discard(task)
        waiter = self._waiter
        if waiter is not None and not self._tasks and not waiter.done():
            waiter.set_result(None)

    def _on_spawned_done(self, task: asyncio.Task[Any]) -> None:
        if self._failing is None or task not in self._failing:
            self._finished(task)

    def _spawned_failed(self, task: asyncio.Task[Any] | None, exc: BaseException) -> None:
        assert self._failing is not None
        self._failing.discard(task)
        self._finished(task)
        self._task_failed(task, exc)

    def _on_task_done(self, task: asyncio.Task[Any]) -> None:
        self._finished(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self._task_failed(task, exc)

    def _task_failed(self, task: asyncio.Task[Any] | None, exc: BaseException) -> None:
        if self._errors is None:
            self._errors = []
        self._errors.append(exc)
        if isinstance(exc, (SystemExit, KeyboardInterrupt)) and self._base_error is None:
            self._base_error = exc
        if self._parent.done():  # the body is gone: nobody else will hear of it
            self._loop.call_exception_handler({
                "message": f"Task {task!r} has errored out but its parent task "
                           f"{self._parent} is already completed",
                "exception": exc, "task": task,
            })
            return
        if not self._aborting and not self._parent_cancel_requested:
            self._abort()
            self._parent_cancel_requested = True
            self._parent.cancel()
