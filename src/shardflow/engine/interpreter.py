"""The instance interpreter: runs one workflow instance on the current event loop.

How the graph runs (ARCHITECTURE.md section 2):

* A node runs once, when every incoming edge is resolved: *taken* (its source finished and the
  condition holds) or *not taken*. With no edge taken the node is skipped and the skip
  propagates (dead-path elimination), so a join after a fork runs exactly once.
* A path runs inline in one task; only the second and later successors of a fork get tasks of
  their own, and whoever resolves a join's last edge carries on into it. Tasks cost ~3 us
  each, the largest overhead an engine adds to short steps.
* Every task of an instance lives in one ``asyncio.TaskGroup``: a failure cancels the running
  siblings (their ``finally`` runs) before the instance reports ``failed``.
* Branches write to forks of the context; a join merges them in edge declaration order.
* A human step *parks* its node: the path stops, the rest of the graph goes on, and the
  instance ends ``waiting``. :meth:`Interpreter.resume` continues a parked node once all its
  tasks are completed.
"""

from __future__ import annotations

import asyncio
import inspect
import operator
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from shardflow._clock import Clock
from shardflow._types import new_id
from shardflow.context import WorkflowContext, common_ancestor
from shardflow.engine.records import StepRecord
from shardflow.engine.stepexec import StepFailure, run_step
from shardflow.errors import GroupFailedError, RaceLostError
from shardflow.limits.gate import Gate
from shardflow.model.groups import ParallelGroup, RaceGroup
from shardflow.model.plan import HUMAN, MACHINE, PARALLEL, EdgePlan, Plan
from shardflow.model.steps import BaseHumanStep
from shardflow.model.tasks import HumanTask

Ready = list[tuple[str, WorkflowContext]]
_BY_EDGE = operator.itemgetter(0)
"""Sort key of a join's arrivals, (edge index, source, context): declaration order."""


@dataclass(slots=True)
class Parked:
    """A node waiting for people: its input context, every branch's context so far, the
    errors of tolerated failed branches, and the open task of each human branch."""

    node: str
    base: WorkflowContext
    branches: list[WorkflowContext | None]
    errors: dict[str, BaseException] = field(default_factory=dict)
    tasks: dict[str, int] = field(default_factory=dict)
    """task id -> branch index (-1 for a human step that is the node itself)"""
    data: dict[str, dict[str, Any]] = field(default_factory=dict)
    """task id -> submitted form data"""

    @property
    def ready(self) -> bool:
        return len(self.data) == len(self.tasks)


class Interpreter:
    """The state of one instance as it runs; see the module docstring for the rules."""

    __slots__ = ("_tg", "arrivals", "clock", "gate", "history", "instance_id", "on_task",
                 "parked", "plan", "remaining", "sinks")

    def __init__(
        self,
        plan: Plan,
        instance_id: str,
        clock: Clock,
        gate: Gate | None = None,
        on_task: Callable[[HumanTask], None] | None = None,
    ) -> None:
        self.plan = plan
        self.instance_id = instance_id
        self.clock = clock
        self.gate = gate
        self.on_task = on_task
        self.remaining = dict(plan.in_degree)
        self.arrivals: dict[str, list[tuple[int, str, WorkflowContext]]] = {}
        self.parked: dict[str, Parked] = {}
        self.sinks: dict[str, WorkflowContext] = {}
        self.history: list[StepRecord] = []
        self._tg: asyncio.TaskGroup | None = None

    # -- entry points -------------------------------------------------------------------------
    async def run(self, context: WorkflowContext) -> None:
        """Run from the initial step until every path has finished or parked.

        Raises :class:`StepFailure` for the first failure; cancellation propagates.
        """
        if not self.plan.can_fork:
            # One path, no task to spawn: what the task group would report, without it.
            await self._path(self.plan.initial, context)
            return
        # _in_group inlined: one coroutine less per instance.
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                await self._path(self.plan.initial, context)
        except BaseExceptionGroup as group:
            raise _first_failure(group) from None
        finally:
            self._tg = None

    async def resume(self, node: str) -> None:
        """Continue the parked ``node`` (all its tasks completed) and everything after it."""
        parked = self.parked.pop(node)
        await self._in_group(self._resume_parked(parked))

    def final_context(self, fallback: WorkflowContext | None) -> WorkflowContext:
        """The instance context: the contexts where paths ended (sinks, and nodes none of whose
        edges was taken) and parked inputs, merged in node order.

        Raises :class:`StepFailure` (node ``<end>``) if they cannot be merged.
        """
        if len(self.sinks) == 1 and not self.parked:  # one sink: nothing to order or merge
            for ctx in self.sinks.values():
                return ctx
        order = list(self.plan.nodes)
        found = sorted(self.sinks.items(), key=lambda kv: order.index(kv[0]))
        found += [(p.node, p.base) for p in self.parked.values()]
        if not found:
            return fallback if fallback is not None else WorkflowContext(instance_id=self.instance_id)
        if len(found) == 1:
            return found[0][1]
        base = common_ancestor([c for _, c in found])
        if base is None:
            return found[-1][1]
        try:
            return self.plan.rules.merge(base, found, step="<end>")
        except Exception as exc:
            raise StepFailure("<end>", exc, base) from exc

    # -- the scheduler ------------------------------------------------------------------------
    async def _in_group(self, body: Coroutine[Any, Any, None]) -> None:
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                await body
        except BaseExceptionGroup as group:
            raise _first_failure(group) from None
        finally:
            self._tg = None

    async def _path(self, node: str, ctx: WorkflowContext) -> None:
        # The hot loop: a machine step runs without the _exec_node coroutine, and edges
        # without conditions are resolved without the _advance coroutine.
        nodes = self.plan.nodes
        while True:
            plan = nodes[node]
            if plan.kind == MACHINE:
                out = await run_step(plan.node, ctx, node, node, self.clock,  # type: ignore[arg-type]
                                     self.gate, self.history)
            else:
                exec_out = await self._exec_node(node, ctx)
                if exec_out is None:
                    return
                out = exec_out
            outgoing = plan.outgoing
            if not outgoing:
                self.sinks[node] = out
                return
            if plan.unconditional_single:
                edge = outgoing[0]
                ready = self._arrive(edge.target, edge.index, node, out)
            elif plan.unconditional:
                ready = self._fork(node, outgoing, out)
            else:
                ready = await self._advance(node, out)
            if not ready:
                return
            if len(ready) > 1:
                self._spawn(ready[1:])
            node, ctx = ready[0]

    def _spawn(self, ready: Ready) -> None:
        assert self._tg is not None
        for node, ctx in ready:
            self._tg.create_task(self._path(node, ctx))

    async def _advance(self, node: str, out: WorkflowContext) -> Ready:
        plan = self.plan.nodes[node]
        outgoing = plan.outgoing
        if not outgoing:
            self.sinks[node] = out
            return []
        if plan.unconditional_single:
            return self._arrive(outgoing[0].target, outgoing[0].index, node, out)
        if plan.unconditional:
            return self._fork(node, outgoing, out)
        taken: list[bool] = []
        for edge in outgoing:
            if edge.condition is None:
                taken.append(True)
                continue
            try:
                result = edge.condition(out)
                if inspect.isawaitable(result):
                    result = await result
            except Exception as exc:
                raise StepFailure(f"{node} -> {edge.target}", exc, out) from exc
            taken.append(bool(result))
        fork = sum(taken) > 1
        if not any(taken):  # the path ends here: its writes belong in the final context
            self.sinks[node] = out
        ready: Ready = []
        for edge, ok in zip(outgoing, taken, strict=True):
            ctx = (out.fork() if fork else out) if ok else None
            ready.extend(self._arrive(edge.target, edge.index, node, ctx))
        return ready

    def _fork(self, node: str, outgoing: tuple[EdgePlan, ...], out: WorkflowContext) -> Ready:
        """Every edge taken (none has a condition): what _advance does, without awaiting."""
        if len(outgoing) == 1:
            edge = outgoing[0]
            return self._arrive(edge.target, edge.index, node, out)
        ready: Ready = []
        for edge in outgoing:
            ready.extend(self._arrive(edge.target, edge.index, node, out.fork()))
        return ready

    def _arrive(
        self, target: str, index: int, source: str, ctx: WorkflowContext | None
    ) -> Ready:
        left = self.remaining[target] - 1
        self.remaining[target] = left
        if ctx is not None:
            if left == 0 and target not in self.arrivals:
                return [(target, ctx)]
            self.arrivals.setdefault(target, []).append((index, source, ctx))
        if left > 0:
            return []
        arrived = self.arrivals.pop(target, None)
        if not arrived:
            return self._skip(target)
        if len(arrived) == 1:
            return [(target, arrived[0][2])]
        arrived.sort(key=_BY_EDGE)
        contexts = [c for _, _, c in arrived]
        base = common_ancestor(contexts)
        assert base is not None
        try:
            merged = self.plan.rules.merge(base, [(s, c) for _, s, c in arrived], step=target)
        except Exception as exc:
            raise StepFailure(target, exc, base) from exc
        return [(target, merged)]

    def _skip(self, node: str) -> Ready:
        now = time.time()
        self.history.append(StepRecord(node, "skipped", 0, now, now))
        ready: Ready = []
        for edge in self.plan.nodes[node].outgoing:
            ready.extend(self._arrive(edge.target, edge.index, node, None))
        return ready

    # -- nodes ---------------------------------------------------------------------------------
    async def _exec_node(self, node: str, ctx: WorkflowContext) -> WorkflowContext | None:
        plan = self.plan.nodes[node]
        kind = plan.kind
        if kind == MACHINE:
            return await run_step(plan.node, ctx, node, node, self.clock, self.gate,  # type: ignore[arg-type]
                                  self.history)
        if kind == HUMAN:
            parked = Parked(node, ctx, [ctx])
            self._open_task(parked, node, node, plan.node, -1)  # type: ignore[arg-type]
            self.parked[node] = parked
            return None
        if kind == PARALLEL:
            return await self._parallel(node, node, plan.node, ctx)  # type: ignore[arg-type]
        return await self._race(node, node, plan.node, ctx)  # type: ignore[arg-type]

    async def _branch(self, path: str, branch: Any, ctx: WorkflowContext) -> WorkflowContext:
        if isinstance(branch, ParallelGroup):
            out = await self._parallel(path, branch.step_name, branch, ctx)
            assert out is not None
            return out
        if isinstance(branch, RaceGroup):
            return await self._race(path, branch.step_name, branch, ctx)
        return await run_step(branch, ctx, branch.step_name, path, self.clock, self.gate,
                              self.history)

    def _open_task(self, parked: Parked, node: str, key: str, step: BaseHumanStep,
                   branch: int) -> None:
        now = time.time()
        due = step.due_in_seconds
        task = HumanTask(
            id=new_id(), instance_id=self.instance_id, node=node, step=key,
            title=step.title or key, form_schema=step.form_schema, assignee=step.assignee,
            due_at=now + due if due is not None else None, created_at=now,
        )
        parked.tasks[task.id] = branch
        if self.on_task is not None:
            self.on_task(task)

    async def _parallel(self, path: str, key: str, group: ParallelGroup,
                        ctx: WorkflowContext) -> WorkflowContext | None:
        branches = group.branches
        children: list[WorkflowContext | None] = [ctx.fork() for _ in branches]
        errors: dict[str, BaseException] = {}
        limit = group.max_concurrent
        semaphore = asyncio.Semaphore(limit) if limit and limit < len(branches) else None
        tolerant = group.tolerate_failures

        async def run(index: int, branch: Any) -> None:
            child = children[index]
            assert child is not None
            try:
                if semaphore is None:
                    children[index] = await self._branch(f"{path}/{branch.step_name}", branch, child)
                else:
                    async with semaphore:
                        children[index] = await self._branch(
                            f"{path}/{branch.step_name}", branch, child)
            except StepFailure as failure:
                if not tolerant:
                    raise
                errors[branch.step_name] = failure.error
                children[index] = None

        humans = [i for i, b in enumerate(branches) if isinstance(b, BaseHumanStep)]
        await _run_all([run(i, b) for i, b in enumerate(branches) if i not in humans])
        if humans:
            parked = Parked(path, ctx, children, errors)
            for i in humans:
                self._open_task(parked, path, branches[i].step_name, branches[i], i)  # type: ignore[arg-type]
            self.parked[path] = parked
            return None
        return await self._finish_parallel(path, key, group, ctx, children, errors)

    async def _finish_parallel(self, path: str, key: str, group: ParallelGroup,
                               ctx: WorkflowContext, children: list[WorkflowContext | None],
                               errors: dict[str, BaseException]) -> WorkflowContext:
        done = [(b.step_name, c) for b, c in zip(group.branches, children, strict=True)
                if c is not None]
        try:
            merged = self.plan.rules.merge(ctx, done, step=path)
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
            merged = await run_step(cb, merged, cb.step_name, f"{path}/{cb.step_name}",
                                    self.clock, self.gate, self.history)
        return merged

    async def _race(self, path: str, key: str, group: RaceGroup,
                    ctx: WorkflowContext) -> WorkflowContext:
        names = [b.step_name for b in group.branches]
        tasks = [
            asyncio.ensure_future(self._branch(f"{path}/{name}", branch, ctx.fork()))
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

    async def _resume_parked(self, parked: Parked) -> None:
        node = parked.node
        for task_id, index in parked.tasks.items():
            data = parked.data[task_id]
            if index < 0:
                parked.base.set(node, data)
            else:
                branch = parked.branches[index]
                assert branch is not None
                step = self._group(node).branches[index]
                branch.set(step.step_name, data)
        if parked.tasks and min(parked.tasks.values()) < 0:
            out = parked.base
        else:
            out = await self._finish_parallel(node, node, self._group(node), parked.base,
                                              parked.branches, parked.errors)
        self._spawn(await self._advance(node, out))

    def _group(self, node: str) -> ParallelGroup:
        group = self.plan.nodes[node].node
        assert isinstance(group, ParallelGroup)
        return group


async def _run_all(coros: list[Coroutine[Any, Any, None]]) -> None:
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
        raise _first_failure(group) from None


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
    return None


def _first_failure(group: BaseExceptionGroup[Any]) -> BaseException:
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

