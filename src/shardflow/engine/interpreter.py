"""The instance interpreter: runs one workflow instance on the current event loop.

How the graph runs (docs/SEMANTICS.md):

* A node runs once, when every incoming edge is resolved: *taken* (its source finished and the
  condition holds) or *not taken*. With no edge taken the node is skipped and the skip
  propagates (dead-path elimination), so a join after a fork runs exactly once.
* A path runs inline in one task; only the second and later successors of a fork get tasks of
  their own, and whoever resolves a join's last edge carries on into it. A static plan (no
  condition, no group, no human step) runs as a compiled schedule (``engine/schedule.py``):
  the same rules, decided once per plan instead of per node per instance.
* The step attempt is ``engine/attempt.py``'s and the edge arrival ``engine/arrival.py``'s
  (the interpreter calls their function forms, a schedule writes out their templates); the
  instance's state is an
  :class:`~shardflow.engine.state.InstanceState`, which this class extends with the walk.
* Every task of an instance lives in one :class:`~shardflow.engine.scope.PathScope` (the rules
  of ``asyncio.TaskGroup``, cheaper): a failure cancels the running siblings (their ``finally``
  runs) before the instance reports ``failed``.
* Branches write to forks of the context; a join merges them in edge declaration order.
  Groups run in ``engine/branches.py``; gateways, timers and webhooks in
  ``engine/passive.py`` (an exclusive gateway's choice resolves its edges in ``_advance``).
* A human step *parks* its node (``engine/parking.py``): the path stops, the rest of the graph
  goes on, and the instance ends ``waiting``. :meth:`Interpreter.to_snapshot` records that
  state as JSON, :meth:`Interpreter.from_snapshot` brings it back (in any process),
  :meth:`Interpreter.complete_task` takes a task's form data and :meth:`Interpreter.resume`
  continues a node once all its tasks are completed.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any

from shardflow._clock import Clock
from shardflow.context import WorkflowContext
from shardflow.engine import snapshot
from shardflow.engine.arrival import arrive, fork, refused
from shardflow.engine.attempt import (
    StepFailure,
    allowed,
    is_cancellation,
    now,
    run_step,
    succeeded,
)
from shardflow.engine.branches import (
    finish_parallel,
    first_failure,
    run_branch,
    run_parallel,
    run_race,
)
from shardflow.engine.ending import merge_ends
from shardflow.engine.observe import observed_step
from shardflow.engine.parking import Parked, Waiting, new_task
from shardflow.engine.passive import answered, exclusive_choice, hooks_of, is_timer, passed, run_wait
from shardflow.engine.schedule import schedule_for
from shardflow.engine.scope import PathScope
from shardflow.engine.state import InstanceState, Ready
from shardflow.engine.stepstats import StepStats
from shardflow.errors import TaskNotFoundError
from shardflow.limits.gate import Gate
from shardflow.model.gateways import ExclusiveGateway, ParallelGateway
from shardflow.model.groups import ParallelGroup
from shardflow.model.plan import (
    GatewayPlan,
    GroupPlan,
    HumanPlan,
    MachinePlan,
    ParallelPlan,
    Plan,
    RacePlan,
    WaitPlan,
)
from shardflow.model.steps import BaseHumanStep, BaseStep
from shardflow.model.tasks import HumanTask
from shardflow.model.waits import WebhookStep


class Interpreter(InstanceState):
    """One instance's state and the walk of its plan; see the module docstring for the rules."""

    __slots__ = ()

    # -- snapshots and tasks ------------------------------------------------------------------
    def to_snapshot(self) -> dict[str, Any]:
        """The JSON-ready state of this (waiting) instance: enough to continue it anywhere."""
        return snapshot.encode(self.plan, self.instance_id, self.counts(), self.arrivals,
                               self.sinks, self.parked)

    @classmethod
    def from_snapshot(cls, plan: Plan, state: dict[str, Any], clock: Clock,
                      gate: Gate | None = None,
                      on_task: Callable[[HumanTask], None] | None = None,
                      stats: StepStats | None = None) -> Interpreter:
        """An interpreter in the state :meth:`to_snapshot` recorded, ready for
        :meth:`complete_task` and :meth:`resume`; raises ``ValueError`` for a snapshot of
        an unknown format."""
        decoded = snapshot.decode(state)
        interpreter = cls(plan, decoded.instance_id, clock, gate, on_task, stats)
        interpreter.remaining = decoded.remaining
        interpreter.arrivals = decoded.arrivals
        interpreter.sinks = decoded.sinks
        interpreter.parked = decoded.parked
        return interpreter

    def waits_on(self, task_id: str) -> bool:
        """True if a parked node of this instance waits for the task ``task_id``."""
        return any(task_id in parked.tasks for parked in self.parked.values())

    def complete_task(self, task_id: str, data: dict[str, Any], user: str | None = None
                      ) -> str | None:
        """Record the form data of a completed task; the node to :meth:`resume` if that was
        its last open task, else None. Raises :class:`TaskNotFoundError` if no parked node
        waits for ``task_id``. The ``user`` who completed a human step's task becomes the
        context's ``user_id``, as in litestar-workflows (a timer or webhook has no user)."""
        for node, parked in self.parked.items():
            if task_id in parked.tasks:
                parked.data[task_id] = data
                if user is not None and not isinstance(self.plan.nodes[node], WaitPlan):
                    parked.user = user
                return node if parked.ready else None
        raise TaskNotFoundError(task_id)

    def ready_nodes(self) -> list[str]:
        """Parked nodes whose tasks are all completed, in the order they parked."""
        return [node for node, parked in self.parked.items() if parked.ready]

    def open_task(self, parked: Parked, key: str, step: Waiting, branch: int,
                  due_in: float | None = None) -> None:
        """Open the task of waiting ``step`` (branch ``branch`` of ``parked``, -1 for the
        node), due in ``due_in`` seconds if given (else as the step says)."""
        task = new_task(self.instance_id, parked.node, key, step, parked.base, due_in)
        parked.tasks[task.id] = branch
        if self.on_task is not None:
            self.on_task(task)

    # -- entry points -------------------------------------------------------------------------
    def run(self, context: WorkflowContext) -> Coroutine[Any, Any, None]:
        """Run from the initial step until every path has finished or parked.

        Raises :class:`StepFailure` for the first failure; cancellation propagates. Await
        it as a coroutine function: a compiled plan's coroutine is its schedule's entry,
        which opens the instance's scope itself.
        """
        plan = self.plan
        entry = (schedule_for(plan, (self.stats is not None, self.gate is not None))
                 if self.events is None else None)
        if entry is not None:
            return entry(self, context)
        body = self._path(plan.initial, context)
        if not plan.can_fork:  # one path, no task to spawn: no scope either
            return body
        return self._in_group(body)

    def run_from(self, node: str, context: WorkflowContext) -> Coroutine[Any, Any, None]:
        """Run ``node`` on ``context`` and the nodes after it, as if those before it had run
        (``engine.schedule_step``): a join after it waits only for the edges that can still
        arrive, those from ``node`` and the nodes after it. Always interpreted."""
        self.remaining = counts_from(self.plan, node)
        return self._in_group(self._path(node, context))

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
        return merge_ends(self.plan, self.sinks, self.parked, fallback, self.instance_id)

    # -- the scheduler ------------------------------------------------------------------------
    async def _in_group(self, body: Coroutine[Any, Any, None]) -> None:
        scope = self.scope = PathScope.for_current_task()
        try:
            try:
                await body
            except BaseException as exc:
                await scope.close(exc)
                raise
            await scope.close(None)
        except BaseExceptionGroup as group:
            raise first_failure(group) from None
        finally:
            self.scope = None

    async def _path(self, node: str, ctx: WorkflowContext) -> None:
        """Run ``node`` on ``ctx`` and the nodes after it, inline, until the path ends, parks
        or waits at a join; successors beyond the first get tasks of their own."""
        nodes = self.plan.nodes
        while True:
            plan = nodes[node]
            step_out: WorkflowContext | None
            if isinstance(plan, MachinePlan):
                if self.events is None:
                    step_out = await run_step(plan.step, ctx, node, node, self.clock, self.gate,
                                              self.step_log, self.stats)
                else:
                    step_out = await observed_step(self, plan.step, node, ctx)
            elif (hooks := hooks_of(plan)) is not None and hooks.guarded:
                step_out = await self._guarded(node, hooks, ctx)
            else:
                step_out = ctx
            if step_out is None:  # can_execute said no
                ready = refused(self, node, ctx)
                if not ready:
                    return
                if len(ready) > 1:
                    self._spawn(ready[1:])
                node, ctx = ready[0]
                continue
            if isinstance(plan, MachinePlan):
                out = step_out
            else:
                exec_out = await self._exec_node(node, ctx)
                if exec_out is None:
                    return
                out = exec_out
            outgoing = plan.outgoing
            if not outgoing:
                self.sinks[node] = out
                return
            if plan.unconditional:
                ready = fork(self, outgoing, out)
            else:
                ready = await self._advance(node, out)
            if not ready:
                return
            if len(ready) > 1:
                self._spawn(ready[1:])
            node, ctx = ready[0]

    def _spawn(self, ready: Ready) -> None:
        assert self.scope is not None
        for node, ctx in ready:
            self.scope.create_task(self._path(node, ctx))

    async def _advance(self, node: str, out: WorkflowContext) -> Ready:
        """Resolve the edges of ``node`` (finished with ``out``), conditions included."""
        plan = self.plan.nodes[node]
        outgoing = plan.outgoing
        if not outgoing:
            self.sinks[node] = out
            return []
        if plan.unconditional:
            return fork(self, outgoing, out)
        taken: list[bool] = []
        if isinstance(plan, GatewayPlan) and isinstance(plan.gateway, ExclusiveGateway):
            taken = await exclusive_choice(node, plan.gateway, outgoing, out)
        for edge in outgoing[len(taken):]:
            if edge.condition is None:
                taken.append(True)
                continue
            try:
                result = edge.condition(out)
                if inspect.isawaitable(result):
                    result = await result
            except BaseException as exc:  # whatever a condition raises fails this instance
                if is_cancellation(exc):
                    raise
                raise StepFailure(f"{node} -> {edge.target}", exc, out) from exc
            taken.append(bool(result))
        several = sum(taken) > 1
        if not any(taken):  # the path ends here: its writes belong in the final context
            self.sinks[node] = out
        ready: Ready = []
        for edge, ok in zip(outgoing, taken, strict=True):
            ctx = (out.fork() if several else out) if ok else None
            ready.extend(arrive(self, edge.target, edge.index, node, ctx))
        return ready

    # -- nodes ---------------------------------------------------------------------------------
    async def _guarded(self, node: str, step: BaseStep, ctx: WorkflowContext
                       ) -> WorkflowContext | None:
        """``ctx`` if the ``can_execute`` of node ``node`` (not a machine step) allows it to
        run, else None (told to the events, as a machine step's refusal is)."""
        if await allowed(step, ctx, node, node, self.step_log, self.stats):
            return ctx
        if self.events is not None:
            await self.events.emit("step.skipped", instance_id=self.instance_id,
                                   step_name=node, reason="can_execute returned False")
        return None

    async def _exec_node(self, node: str, ctx: WorkflowContext) -> WorkflowContext | None:
        plan = self.plan.nodes[node]
        if isinstance(plan, HumanPlan):
            parked = Parked(node, ctx, [ctx])
            self.open_task(parked, node, plan.step, -1)
            self.parked[node] = parked
            return None
        if isinstance(plan, ParallelPlan):
            return await run_parallel(self, node, node, plan.group, ctx)
        if isinstance(plan, GroupPlan):
            return await run_branch(self, node, plan.group, ctx)
        if isinstance(plan, GatewayPlan):
            passed(self, node, now())
            gateway = plan.gateway
            if gateway.hooked and isinstance(gateway, ParallelGateway):
                await succeeded(gateway, ctx, node, list(gateway.branches))
            return ctx
        if isinstance(plan, WaitPlan):
            return await run_wait(self, node, plan, ctx)
        assert isinstance(plan, RacePlan)  # a machine step runs in _path
        return await run_race(self, node, node, plan.group, ctx)

    async def _resume_parked(self, parked: Parked) -> None:
        node = parked.node
        if parked.user is not None:
            parked.base.info.user_id = parked.user
        for task_id, index in parked.tasks.items():
            data = parked.data[task_id]
            if index < 0:
                await self._complete_node(node, parked, data)
            else:
                branch = parked.branches[index]
                assert branch is not None
                step = self._group(node).branches[index]
                _put_form(branch, step, step.step_name, data)
                path = f"{node}/{step.step_name}"
                if step.hooked:
                    await succeeded(step, branch, path, data)
                answered(self, branch, path, data)
        if parked.tasks and min(parked.tasks.values()) < 0:
            out = parked.base
        else:
            out = await finish_parallel(self, node, node, self._group(node), parked.base,
                                        parked.branches, parked.errors)
        self._spawn(await self._advance(node, out))

    async def _complete_node(self, node: str, parked: Parked, data: dict[str, Any]) -> None:
        """Put the data that completed the parked ``node``'s own task into its context:
        under the node id; a webhook's under its ``callback_key``; a timer's nowhere; a
        human step's with ``form_data_at_top_level`` field by field at the top level. Then
        the step succeeded: its ``on_success`` is told (a timer's with None, the others' with
        the data)."""
        plan = self.plan.nodes[node]
        base = parked.base
        if isinstance(plan, WaitPlan):
            step: BaseStep = plan.step
            if isinstance(plan.step, WebhookStep):
                base.set(plan.step.callback_key, data)
            if step.hooked:
                await succeeded(step, base, node, None if is_timer(self.plan, node) else data)
            passed(self, node, now())
            return
        assert isinstance(plan, HumanPlan)
        _put_form(base, plan.step, node, data)
        if plan.step.hooked:
            await succeeded(plan.step, base, node, data)
        answered(self, base, node, data)

    def _group(self, node: str) -> ParallelGroup:
        plan = self.plan.nodes[node]
        assert isinstance(plan, ParallelPlan)
        return plan.group


def counts_from(plan: Plan, start: str) -> dict[str, int]:
    """Unresolved incoming edges per node for a run that begins at ``start``: only edges
    from ``start`` and the nodes it reaches count (the others were resolved before)."""
    reached = {start}
    todo = [start]
    while todo:
        for edge in plan.nodes[todo.pop()].outgoing:
            if edge.target not in reached:
                reached.add(edge.target)
                todo.append(edge.target)
    return {node: sum(e.source in reached for e in plan.nodes[node].incoming)
            for node in reached}


def _put_form(ctx: WorkflowContext, step: Any, key: str, data: dict[str, Any]) -> None:
    """Store a human task's form data in ``ctx``: under ``key`` (the node id, or the branch
    name in a group), or field by field at the top level if ``step`` opted in
    (``form_data_at_top_level``)."""
    if isinstance(step, BaseHumanStep) and step.form_data_at_top_level:
        for field, value in data.items():
            ctx.set(field, value)
    else:
        ctx.set(key, data)
