"""Running one step under its policies: limits, rate limits, timeout, retries.

Both the interpreter and ``LocalExecutionEngine.execute_step`` call :func:`run_step`, so a step
behaves the same however it is reached.

It is also the error boundary of a step: whatever a step raises, ``BaseException`` subclasses
included, ends as a :class:`StepFailure` naming it, except the cancellation of the task
running it (a timeout, a failed sibling, a lost race, the host shutting down), which always
propagates. ``KeyboardInterrupt`` or ``SystemExit`` escaping a task would stop the whole event
loop, and with it every other instance of a batch worker.

While a step runs, the context it runs on names it (``current_step``): that is all a watchdog
needs to blame a step that blocks the loop (``engine/blame.py`` reads it from the frames).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, NoReturn

from shardflow._clock import Clock, TimeoutScope
from shardflow.context import WorkflowContext
from shardflow.engine.records import StepEntry
from shardflow.engine.stepstats import StepStats
from shardflow.errors import StepTimeoutError
from shardflow.limits.gate import Gate
from shardflow.limits.retry import retry_delay
from shardflow.limits.timeouts import enforced_after
from shardflow.model.plan import step_limits
from shardflow.model.steps import BaseMachineStep

_now = time.time
_current_task = asyncio.current_task


def _count_wait(stats: StepStats | None, path: str, since: float) -> float:
    """Count the wait for a limit or rate slot that began at ``since``; return now, when the
    step's execution (and its record) starts. Only throttled steps pay for it."""
    now = _now()
    if stats is not None:
        stats.waited(path, now - since)
    return now


class StepFailure(Exception):
    """Internal: a step (or join) failed for good. Carries where, why, and the context it had."""

    def __init__(self, node: str, error: BaseException, context: WorkflowContext | None) -> None:
        super().__init__(node, error)
        self.node = node
        self.error = error
        self.context = context


def is_cancellation(exc: BaseException) -> bool:
    """True if ``exc`` is the running task being cancelled, not a ``CancelledError`` that
    code raised on its own (a step doing ``raise asyncio.CancelledError``, or awaiting a
    future someone else cancelled): only a real cancellation leaves a request on the task."""
    if not isinstance(exc, asyncio.CancelledError):
        return False
    task = _current_task()
    return task is None or task.cancelling() > 0


async def _call(step: BaseMachineStep, ctx: WorkflowContext, path: str, clock: Clock) -> Any:
    timeout = step.timeout_seconds
    if timeout is None:
        return await step.execute(ctx)
    scope = TimeoutScope(clock, enforced_after(timeout))
    try:
        async with scope:
            return await step.execute(ctx)
    except TimeoutError as exc:
        if scope.expired:
            raise StepTimeoutError(path, timeout) from exc
        raise


def plain_failure(exc: BaseException, step_path: str, started: float, ctx: WorkflowContext,
                  history: list[StepEntry] | None, stats: StepStats | None) -> NoReturn:
    """Record and raise what :func:`run_step` does when the single attempt of a plain step
    (no retries, timeout or limits: the interpreter awaits it without
    ``run_step``'s coroutine) raised ``exc``; called in the ``except`` clause that caught it."""
    cancelled = not isinstance(exc, Exception) and is_cancellation(exc)
    if history is not None:
        history.append((step_path, "cancelled" if cancelled else "failed", 1, started,
                        time.time(), None if cancelled else type(exc).__name__))
    if stats is not None:
        stats.durations[step_path].append(_now() - started)
    if cancelled:
        raise exc
    raise StepFailure(step_path, exc, ctx) from exc


async def run_step(
    step: BaseMachineStep,
    ctx: WorkflowContext,
    key: str,
    path: str,
    clock: Clock,
    gate: Gate | None,
    history: list[StepEntry] | None,
    stats: StepStats | None = None,
) -> WorkflowContext:
    """Run ``step`` on ``ctx`` and return the context holding its writes.

    A step without retries writes straight into ``ctx``. A step with retries runs each attempt
    on a fork, so a failed attempt leaves no trace; the successful fork is returned.
    A return value other than ``None`` is stored under ``key``.

    Each attempt is appended to ``history`` (a :data:`StepEntry`) and/or counted in
    ``stats`` under ``path``.
    """
    retries = step.retries
    # Limits mean nothing without a gate: a step without one pays one test, not four.
    throttled = gate is not None and bool(step.limit or step.rate_limit)
    if throttled:
        limits = step_limits(step)
        rate = step.rate_limit
    attempt = 0
    while True:
        attempt += 1
        work = ctx.fork() if retries else ctx
        work.current_step = key
        started = _now()
        try:
            if throttled:
                assert gate is not None
                token = await gate.enter(limits, rate)
                started = _count_wait(stats, path, started)
                try:
                    result = await _call(step, work, path, clock)
                finally:
                    gate.leave(token)
            elif step.timeout_seconds is None:  # _call inlined: one coroutine less per step
                result = await step.execute(work)
            else:
                result = await _call(step, work, path, clock)
            if result is not None:
                work.set(key, result)
        except Exception as exc:
            if history is not None:
                history.append((path, "failed", attempt, started, time.time(),
                                type(exc).__name__))
            if stats is not None:
                stats.durations[path].append(_now() - started)
            if attempt <= retries and isinstance(exc, step.retry_on):
                if stats is not None:
                    stats.retried(path)
                delay = retry_delay(step.retry_delay_seconds, step.retry_jitter_factor, attempt)
                if delay > 0:
                    await clock.sleep(delay)
                continue
            raise StepFailure(path, exc, ctx) from exc
        except BaseException as exc:
            cancelled = is_cancellation(exc)
            if history is not None:
                history.append((path, "cancelled" if cancelled else "failed", attempt,
                                started, time.time(), None if cancelled else type(exc).__name__))
            if stats is not None:
                stats.durations[path].append(_now() - started)
            if cancelled:
                raise
            raise StepFailure(path, exc, ctx) from exc
        finally:
            work.current_step = None
        if history is not None:
            history.append((path, "completed", attempt, started, _now(), None))
        if stats is not None:
            stats.durations[path].append(_now() - started)
        return work
