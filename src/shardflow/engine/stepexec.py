"""Running one step under its policies: limits, rate limits, timeout, retries.

Both the interpreter and ``LocalExecutionEngine.execute_step`` call :func:`run_step`, so a step
behaves the same however it is reached.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from shardflow._clock import Clock, TimeoutScope
from shardflow.context import WorkflowContext
from shardflow.engine.records import StepRecord
from shardflow.errors import StepTimeoutError
from shardflow.limits.gate import Gate
from shardflow.limits.retry import retry_delay
from shardflow.limits.timeouts import enforced_after
from shardflow.model.plan import step_limits
from shardflow.model.steps import BaseStep

_now = time.time
_record = tuple.__new__
"""``_record(StepRecord, (...))`` builds a record without the Python-level ``__new__`` that
NamedTuple generates (half the cost; one record per step execution)."""


class StepFailure(Exception):
    """Internal: a step (or join) failed for good. Carries where, why, and the context it had."""

    def __init__(self, node: str, error: BaseException, context: WorkflowContext | None) -> None:
        super().__init__(node, error)
        self.node = node
        self.error = error
        self.context = context


async def _call(step: Any, ctx: WorkflowContext, path: str, clock: Clock) -> Any:
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


async def run_step(
    step: BaseStep,
    ctx: WorkflowContext,
    key: str,
    path: str,
    clock: Clock,
    gate: Gate | None,
    history: list[StepRecord] | None,
) -> WorkflowContext:
    """Run ``step`` on ``ctx`` and return the context holding its writes.

    A step without retries writes straight into ``ctx``. A step with retries runs each attempt
    on a fork, so a failed attempt leaves no trace; the successful fork is returned.
    A return value other than ``None`` is stored under ``key``.
    """
    retries = step.retries
    limits: tuple[str, ...] = ()
    rate: str | None = None
    if gate is not None:  # limits mean nothing without a gate: skip them on the hot path
        limits = step_limits(step) if step.limit is not None else ()
        rate = step.rate_limit
    throttled = bool(limits or rate)
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
                try:
                    result = await _call(step, work, path, clock)
                finally:
                    gate.leave(token)
            elif step.timeout_seconds is None:  # _call inlined: one coroutine less per step
                result = await step.execute(work)  # type: ignore[attr-defined]
            else:
                result = await _call(step, work, path, clock)
            if result is not None:
                work.set(key, result)
        except asyncio.CancelledError:
            if history is not None:
                history.append(StepRecord(path, "cancelled", attempt, started, time.time()))
            raise
        except Exception as exc:
            if history is not None:
                history.append(
                    StepRecord(path, "failed", attempt, started, time.time(), type(exc).__name__)
                )
            if attempt <= retries and isinstance(exc, step.retry_on):
                delay = retry_delay(step.retry_delay_seconds, step.retry_jitter_factor, attempt)
                if delay > 0:
                    await clock.sleep(delay)
                continue
            raise StepFailure(path, exc, ctx) from exc
        finally:
            work.current_step = None
        if history is not None:
            history.append(_record(StepRecord, (path, "completed", attempt, started, _now(), None)))
        return work
