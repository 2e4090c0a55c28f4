"""The step attempt: each rule of running one step of a plan, written in this module.

Two clients apply these rules: the interpreter (``engine/interpreter.py``), node by node, and
the schedule emitter (``engine/schedule.py``), which writes a static plan out as Python once
per plan. Each rule is here in the form the interpreter calls (a function) and, where a
compiled schedule spells it out inline, in the form the emitter writes (a template that
fills in the node's constants). ``tests/engine/test_attempt.py`` runs both forms on the same
cases and compares what they record and raise.

**A step attempt** (docs/SEMANTICS.md): the context names the running step
(``current_step``, what a watchdog blames); the step's return value, unless ``None``, is
recorded in its instance's history (and stored under its key if the step opts in with
``store_result``); each attempt is logged as a :data:`StepEntry` (or counted in
:class:`StepStats`); a failure ends as a :class:`StepFailure` naming the step, except the
cancellation of the task running it (a timeout, a failed sibling, a lost race, the host
shutting down), which propagates. ``KeyboardInterrupt`` or ``SystemExit`` escaping a task
would stop the whole event loop, and with it every other instance of a batch worker, so they
fail the step too. :func:`run_step` applies every policy (limits, rate limits, timeout,
retries); a *plain* step (:func:`is_plain`: none of them) is the one a schedule writes out
inline (:func:`step_source`), and every other step, in both forms, goes through
:func:`run_step`. A new rule for some steps (a guard, a hook) makes them not plain and goes
into :func:`run_step`; a rule for every step goes into both forms here.

The edge arrival (what happens when a node finishes) is ``engine/arrival.py``'s, in the
same two forms.
"""

from __future__ import annotations

import asyncio
import logging
import time
from types import FrameType
from typing import Any, NoReturn

from shardflow._clock import Clock, TimeoutScope
from shardflow.context import WorkflowContext, record_result
from shardflow.engine.records import step_error
from shardflow.engine.rows import StepEntry
from shardflow.engine.stepstats import StepStats
from shardflow.errors import StepTimeoutError
from shardflow.limits.gate import Gate
from shardflow.limits.retry import retry_delay
from shardflow.limits.timeouts import enforced_after
from shardflow.model.plan import MachinePlan, Plan, step_limits
from shardflow.model.steps import BaseMachineStep, BaseStep

now = time.time
"""The clock of step records (wall time: records are read by people and other processes)."""
_current_task = asyncio.current_task


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


# -- the step attempt: function form ----------------------------------------------------------
def is_plain(step: BaseMachineStep, gated: bool) -> bool:
    """True if ``step`` has no policy to apply (no retries, no timeout, and no limits when a
    ``gated`` host enforces them): one attempt, which a schedule writes out inline."""
    return not (step.retries or step.timeout_seconds is not None or step.hooked
                or (gated and (step.limit or step.rate_limit)))


def failed_attempt(exc: BaseException, path: str, attempt: int, started: float,
                   ctx: WorkflowContext, log: list[StepEntry] | None,
                   stats: StepStats | None) -> NoReturn:
    """Record the attempt that raised ``exc`` and raise what ends the step: the cancellation
    itself, or a :class:`StepFailure` with ``ctx``. Called in the ``except`` clause."""
    cancelled = not isinstance(exc, Exception) and is_cancellation(exc)
    if log is not None:
        log.append((path, "canceled" if cancelled else "failed", attempt, started, now(),
                    None if cancelled else step_error(path, exc)))
    if stats is not None:
        stats.durations[path].append(now() - started)
    if cancelled:
        raise exc
    raise StepFailure(path, exc, ctx) from exc


def _count_wait(stats: StepStats | None, path: str, since: float) -> float:
    """Count the wait for a limit or rate slot that began at ``since``; return now, when the
    step's execution (and its record) starts. Only throttled steps pay for it."""
    started = now()
    if stats is not None:
        stats.waited(path, started - since)
    return started


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


async def run_step(
    step: BaseMachineStep,
    ctx: WorkflowContext,
    key: str,
    path: str,
    clock: Clock,
    gate: Gate | None,
    log: list[StepEntry] | None,
    stats: StepStats | None = None,
) -> WorkflowContext | None:
    """Run ``step`` on ``ctx`` under its policies and return the context holding its writes,
    or None if its ``can_execute`` said no (the caller skips it: :func:`refused`). Hooks:
    ``can_execute`` before the first attempt, ``on_success`` inside each attempt,
    ``on_failure`` once the step failed for good (not for a cancellation).

    A plain step (no policy to apply) makes one attempt, the one :func:`step_source` writes
    out for a schedule. A step without retries writes straight into ``ctx``. A step with
    retries runs each attempt on a fork, so a failed attempt leaves no trace; the successful
    fork is returned.
    A return value other than ``None`` is recorded in the history under ``path``, where the
    step log has the attempt (stored in the context under ``key`` if the step has
    ``store_result``). Each attempt is logged/counted under ``path``.
    """
    if is_plain(step, gate is not None):
        # its one attempt, as step_source writes it out
        ctx.current_step = key
        started = now()
        try:
            result = await step.execute(ctx)
            if result is not None:
                record_result(ctx, path, result)
                if step.store_result:
                    ctx.set(key, result)
        except BaseException as exc:
            failed_attempt(exc, path, 1, started, ctx, log, stats)
        finally:
            ctx.current_step = None
        if log is not None:
            log.append((path, "completed", 1, started, now(), None))
        if stats is not None:
            stats.durations[path].append(now() - started)
        return ctx
    if step.guarded and not await allowed(step, ctx, key, path, log, stats):
        return None
    hooked = step.hooked
    retries = step.retries
    throttled = gate is not None and bool(step.limit or step.rate_limit)
    if throttled:
        limits = step_limits(step)
        rate = step.rate_limit
    attempt = 0
    while True:
        attempt += 1
        work = ctx.fork() if retries else ctx
        work.current_step = key
        started = now()
        try:
            if throttled:
                assert gate is not None
                token = await gate.enter(limits, rate)
                started = _count_wait(stats, path, started)
                try:
                    result = await _call(step, work, path, clock)
                finally:
                    gate.leave(token)
            elif step.timeout_seconds is None:
                result = await step.execute(work)
            else:
                result = await _call(step, work, path, clock)
            if result is not None:
                record_result(work, path, result)
                if step.store_result:
                    work.set(key, result)
            if hooked:
                await step.on_success(work, result)
        except BaseException as exc:
            if attempt <= retries and isinstance(exc, Exception) and isinstance(exc, step.retry_on):
                if log is not None:
                    log.append((path, "failed", attempt, started, now(), step_error(path, exc)))
                if stats is not None:
                    stats.durations[path].append(now() - started)
                    stats.retried(path)
                delay = retry_delay(step.retry_delay_seconds, step.retry_jitter_factor, attempt)
                if delay > 0:
                    await clock.sleep(delay)
                continue
            if hooked and isinstance(exc, Exception):
                await tell_failure(step, ctx, exc, path)
            failed_attempt(exc, path, attempt, started, ctx, log, stats)
        finally:
            work.current_step = None
        if log is not None:
            log.append((path, "completed", attempt, started, now(), None))
        if stats is not None:
            stats.durations[path].append(now() - started)
        return work


# -- the hooks, for every kind of node ------------------------------------------------------
# litestar-workflows' hooks (docs/SEMANTICS.md, "Step hooks on every node kind"): a machine
# step's are applied by run_step above; a node that runs no attempt (a human step, a gateway, a
# timer, a webhook) applies the same three rules through these functions, each where its kind
# succeeds. Callers test ``step.guarded`` / ``step.hooked`` first: a step without hooks pays
# nothing.
async def allowed(step: BaseStep, ctx: WorkflowContext, key: str, path: str,
                  log: list[StepEntry] | None, stats: StepStats | None = None) -> bool:
    """Ask ``step.can_execute(ctx)`` (once, before the step does anything). What it raises
    fails the step as a failed first attempt would."""
    ctx.current_step = key
    started = now()
    try:
        return bool(await step.can_execute(ctx))
    except BaseException as exc:
        failed_attempt(exc, path, 1, started, ctx, log, stats)
    finally:
        ctx.current_step = None


async def tell_failure(step: BaseStep, ctx: WorkflowContext, error: Exception,
                       path: str) -> None:
    """``step.on_failure(ctx, error)``, once the step failed for good. What it raises is
    logged: the step fails with its own error."""
    try:
        await step.on_failure(ctx, error)
    except Exception:
        logging.getLogger("shardflow.engine").exception("on_failure of %r", path)


async def succeeded(step: BaseStep, ctx: WorkflowContext, path: str, result: Any) -> None:
    """``step.on_success(ctx, result)`` for a node that ran no attempt, when it succeeded
    (what that means per kind: docs/SEMANTICS.md). What it raises fails the node, after
    ``on_failure`` was told."""
    try:
        await step.on_success(ctx, result)
    except Exception as exc:
        await tell_failure(step, ctx, exc, path)
        raise StepFailure(path, exc, ctx) from exc


async def failed(step: BaseStep, ctx: WorkflowContext, error: Exception, path: str) -> NoReturn:
    """Fail the node ``path`` of ``step`` (a node that ran no attempt) with ``error``, telling
    its ``on_failure`` first if it has hooks."""
    if step.hooked:
        await tell_failure(step, ctx, error, path)
    raise StepFailure(path, error, ctx) from error


# -- the step attempt: template form ----------------------------------------------------------
def step_source(node: str, step: str, plain: bool, counted: bool, pad: str, *,
                store: bool = False) -> list[str]:
    """The lines a schedule runs node ``node`` with: ``ctx`` becomes the context holding its
    writes. ``step`` names the step object in the schedule's namespace; ``counted`` says the
    function has ``stats``/``durations`` (statistics) rather than ``log``; ``store`` is the
    step's ``store_result`` (decided here, once per plan).

    A plain step (:func:`is_plain`) is :func:`run_step`'s single attempt written out: the
    same ``current_step``, the same record, the same failure; any other goes through
    :func:`run_step` itself."""
    log, stats = ("None", "stats") if counted else ("log", "None")
    if not plain:
        return [f"{pad}ctx = await run_step({step}, ctx, {node!r}, {node!r}, state.clock, "
                f"state.gate, {log}, {stats})\n"]
    lines = [f"{pad}ctx.current_step = {node!r}\n",
             f"{pad}started = now()\n",
             f"{pad}try:\n",
             f"{pad}    result = await {step}.execute(ctx)\n",
             f"{pad}    if result is not None:\n",
             f"{pad}        record_result(ctx, {node!r}, result)\n",
             *([f"{pad}        ctx.set({node!r}, result)\n"] if store else []),
             f"{pad}except BaseException as exc:\n",
             f"{pad}    failed_attempt(exc, {node!r}, 1, started, ctx, {log}, {stats})\n",
             f"{pad}finally:\n",
             f"{pad}    ctx.current_step = None\n"]
    if counted:
        lines.append(f"{pad}durations[{node!r}].append(now() - started)\n")
    else:
        lines.append(f"{pad}log.append(({node!r}, 'completed', 1, started, now(), None))\n")
    return lines


# -- the running step, as a watchdog reads it ---------------------------------------------------
SCHEDULE_FILE_PREFIX = "<shardflow schedule"
"""How the file name of every compiled schedule begins: its frames run these templates."""


def running_step(frame: FrameType, plan: Plan) -> tuple[str, BaseMachineStep] | bool | None:
    """What step attempt ``frame`` (of a thread stopped in it, read from another thread) is
    running: (path, step); False if it is an attempt's frame between steps (a condition, a
    merge: no step to blame); None if it is no attempt's frame. The running step's record is
    its context's ``current_step``, set by both forms of the attempt; the context is the
    attempt's ``ctx`` (a retried step's attempt runs on ``work``, its fork)."""
    code = frame.f_code
    if code is _RUN_STEP:
        local = frame.f_locals
        work = local.get("work", local.get("ctx"))
        if work is None or work.current_step is None:
            return False
        return local["path"], local["step"]
    if code.co_filename.startswith(SCHEDULE_FILE_PREFIX):
        ctx = frame.f_locals.get("ctx")
        node: str | None = ctx.current_step if ctx is not None else None
        if node is None:
            return False
        planned = plan.nodes.get(node)
        if not isinstance(planned, MachinePlan):
            return False
        return node, planned.step
    return None


_RUN_STEP = run_step.__code__

NAMESPACE: dict[str, Any] = {
    "now": now, "run_step": run_step, "record_result": record_result,
    "failed_attempt": failed_attempt,
}
"""The names the template above uses (a schedule adds ``engine/arrival.py``'s)."""
