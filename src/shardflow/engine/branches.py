"""Group nodes as the interpreter runs them: ``ParallelGroup``, ``RaceGroup``,
``SequentialGroup`` and ``ConditionalGroup`` members.

* A parallel group forks the context per branch, runs the branches concurrently (the first
  inline, so a group of one costs no task; at most ``max_concurrent`` at once), and merges
  their writes in declaration order; tolerated failures are stored under
  ``<group>.errors``; a chord callback runs once after all branches settle. Human branches
  park the group (``engine/parking.py``) until their tasks are completed.
* A race runs every branch as a task; the first success wins, the others are cancelled and
  awaited (their ``finally`` runs), and only the winner's context is kept.
* A sequence runs its members one after the other on one context, in the path's task.
* A conditional group runs the one member its condition names, on the context as it is;
  the others are logged as skipped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from shardflow.context import WorkflowContext
from shardflow.engine.attempt import StepFailure, allowed, is_cancellation, now, run_step
from shardflow.engine.parking import Parked
from shardflow.errors import GroupFailedError, RaceLostError
from shardflow.model.groups import ConditionalGroup, ParallelGroup, RaceGroup, SequentialGroup, decide
from shardflow.model.steps import BaseHumanStep, BaseMachineStep, BaseStep

if TYPE_CHECKING:
    from shardflow.engine.interpreter import Interpreter

Branch = BaseStep | ParallelGroup | RaceGroup | SequentialGroup | ConditionalGroup


async def run_branch(interp: Interpreter, path: str, branch: Branch,
                     ctx: WorkflowContext) -> WorkflowContext:
    """Run one branch of a group (a step or a nested group) at ``path``."""
    if isinstance(branch, ParallelGroup):
        out = await run_parallel(interp, path, branch.step_name, branch, ctx)
        assert out is not None  # validation keeps human steps out of nested groups
        return out
    if isinstance(branch, RaceGroup):
        return await run_race(interp, path, branch.step_name, branch, ctx)
    if isinstance(branch, SequentialGroup):
        for member in branch.branches:
            ctx = await run_branch(interp, f"{path}/{member.step_name}", member, ctx)
        return ctx
    if isinstance(branch, ConditionalGroup):
        return await run_conditional(interp, path, branch, ctx)
    if not isinstance(branch, BaseMachineStep):  # validation keeps human steps out of races
        raise StepFailure(path, TypeError(f"{type(branch).__name__} cannot run here"), ctx)
    out = await run_step(branch, ctx, branch.step_name, path, interp.clock, interp.gate,
                         interp.step_log, interp.stats)
    return out if out is not None else refused_branch(interp, path, ctx)


async def _opens(interp: Interpreter, path: str, step: BaseHumanStep,
                 ctx: WorkflowContext | None) -> bool:
    """True if the human branch ``step`` at ``path`` opens its task: its ``can_execute``
    allows it; else the branch is refused (skipped, no writes) and opens none."""
    assert ctx is not None
    if await allowed(step, ctx, step.step_name, path, interp.step_log, interp.stats):
        return True
    refused_branch(interp, path, ctx)
    return False


def refused_branch(interp: Interpreter, path: str, ctx: WorkflowContext) -> WorkflowContext:
    """A branch at ``path`` whose ``can_execute`` said no: logged as skipped, with no writes
    (its fork ``ctx`` as it was)."""
    started = now()
    interp.history.append((path, "skipped", 0, started, started, None))
    return ctx


async def run_conditional(interp: Interpreter, path: str, group: ConditionalGroup,
                          ctx: WorkflowContext) -> WorkflowContext:
    """Run the member ``group.condition`` chooses; the others are logged as skipped. A key
    that names no member runs nothing (the context goes on unchanged)."""
    try:
        key = await decide(group.condition, ctx)
    except BaseException as exc:
        if is_cancellation(exc):
            raise
        raise StepFailure(path, exc, ctx) from exc
    chosen = group.branches.get(key) if isinstance(key, str) else None
    if interp.step_log is not None:
        started = now()
        interp.step_log.extend((f"{path}/{m.step_name}", "skipped", 0, started, started, None)
                               for m in group.branches.values() if m is not chosen)
    if chosen is None:
        return ctx
    return await run_branch(interp, f"{path}/{chosen.step_name}", chosen, ctx)


async def run_parallel(interp: Interpreter, path: str, key: str, group: ParallelGroup,
                       ctx: WorkflowContext) -> WorkflowContext | None:
    """The merged context of ``group`` at ``path``, or None if it parked for people."""
    branches = group.branches
    children: list[WorkflowContext | None] = [ctx.fork() for _ in branches]
    errors: dict[str, BaseException] = {}
    limit = group.max_concurrent
    semaphore = asyncio.Semaphore(limit) if limit and limit < len(branches) else None
    tolerant = group.tolerate_failures

    async def run(index: int, branch: Branch) -> None:
        child = children[index]
        assert child is not None
        try:
            if semaphore is None:
                children[index] = await run_branch(interp, f"{path}/{branch.step_name}", branch, child)
            else:
                async with semaphore:
                    children[index] = await run_branch(
                        interp, f"{path}/{branch.step_name}", branch, child)
        except StepFailure as failure:
            if not tolerant:
                raise
            errors[branch.step_name] = failure.error
            children[index] = None

    humans = [(i, b) for i, b in enumerate(branches) if isinstance(b, BaseHumanStep)]
    human_index = {i for i, _ in humans}
    await run_all([run(i, b) for i, b in enumerate(branches) if i not in human_index])
    humans = [(i, b) for i, b in humans
              if not b.guarded or await _opens(interp, f"{path}/{b.step_name}", b, children[i])]
    if humans:
        parked = Parked(path, ctx, children, errors)
        for i, step in humans:
            interp.open_task(parked, step.step_name, step, i)
        interp.parked[path] = parked
        return None
    return await finish_parallel(interp, path, key, group, ctx, children, errors)


async def finish_parallel(interp: Interpreter, path: str, key: str, group: ParallelGroup,
                          ctx: WorkflowContext, children: list[WorkflowContext | None],
                          errors: dict[str, BaseException]) -> WorkflowContext:
    """Merge the branches' contexts, check the quorum and run the chord callback."""
    done = [(b.step_name, c) for b, c in zip(group.branches, children, strict=True)
            if c is not None]
    try:
        merged = interp.plan.rules.merge(ctx, done, step=path)
        if errors:
            merged.set(f"{key}.errors", {
                name: {"type": type(e).__name__, "message": str(e)}
                for name, e in errors.items()
            })
        required = group.min_success or 0
        if len(done) < required:
            raise GroupFailedError(path, len(done), required)
    except StepFailure:
        raise
    except Exception as exc:
        raise StepFailure(path, exc, ctx) from exc
    if group.callback is not None:
        cb = group.callback
        cb_path = f"{path}/{cb.step_name}"
        out = await run_step(cb, merged, cb.step_name, cb_path, interp.clock, interp.gate,
                             interp.step_log, interp.stats)
        merged = out if out is not None else refused_branch(interp, cb_path, merged)
    return merged


async def run_race(interp: Interpreter, path: str, key: str, group: RaceGroup,
                   ctx: WorkflowContext) -> WorkflowContext:
    """The winner's context; every loser is cancelled and awaited first."""
    names = [b.step_name for b in group.branches]
    tasks = [
        asyncio.ensure_future(run_branch(interp, f"{path}/{name}", branch, ctx.fork()))
        for name, branch in zip(names, group.branches, strict=True)
    ]
    order = {id(t): i for i, t in enumerate(tasks)}
    errors: dict[str, BaseException] = {}
    pending: set[asyncio.Future[WorkflowContext]] = set(tasks)
    try:
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in sorted(done, key=lambda t: order[id(t)]):
                exc = task.exception()
                if exc is None:
                    return task.result()
                error = exc.error if isinstance(exc, StepFailure) else exc
                errors[names[order[id(task)]]] = error
        raise StepFailure(path, RaceLostError(path, errors), ctx)
    finally:
        await _cancel_and_wait(pending)


async def run_all(coros: list[Coroutine[Any, Any, None]]) -> None:
    """Run coroutines concurrently; the first runs inline, so one branch costs no task."""
    if not coros:
        return
    if len(coros) == 1:
        await coros[0]
        return
    try:
        async with asyncio.TaskGroup() as tg:
            for coro in coros[1:]:
                tg.create_task(coro)
            await coros[0]
    except BaseExceptionGroup as group:
        raise first_failure(group) from None


async def _cancel_and_wait(pending: set[asyncio.Future[WorkflowContext]]) -> None:
    """Cancel the losers and wait until each has finished (its ``finally`` has run)."""
    for task in pending:
        task.cancel()
    while pending:
        try:
            _, pending = await asyncio.wait(pending)
        except asyncio.CancelledError:
            for task in pending:
                task.cancel()
            raise


def first_failure(group: BaseExceptionGroup[Any]) -> BaseException:
    """The exception to report for a task group's failure: the first :class:`StepFailure`,
    else the first other exception (a bug, reported as such)."""
    leaves: list[BaseException] = []

    def collect(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                collect(inner)
        else:
            leaves.append(exc)

    collect(group)
    for leaf in leaves:
        if isinstance(leaf, StepFailure):
            return leaf
    for leaf in leaves:
        if not isinstance(leaf, asyncio.CancelledError):
            return leaf
    return leaves[0]
