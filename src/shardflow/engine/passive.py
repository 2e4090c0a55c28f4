"""Nodes that run no step of their own, as the interpreter runs them: gateways decide where
the path goes, timers and webhooks wait (``model/gateways.py``, ``model/waits.py``).

* A gateway is logged as a completed node (so the history shows the path taken) and passes
  its context on unchanged. A ``ParallelGateway``'s plan is a fork; an ``ExclusiveGateway``
  resolves its edges with :func:`exclusive_choice`: the edge to the node its condition names
  is taken, every other edge is not (the skip propagates).
* A timer of up to ``park_after_seconds`` sleeps on the instance's clock; a longer one, and
  every webhook, *parks* its node with one open task (a timer's task is due when it fires).
  Completing the task continues the node: a webhook's data is stored under its
  ``callback_key``, a timer stores nothing.
* Their hooks (litestar-workflows', ``engine/attempt.py``'s rules): ``can_execute`` is asked
  by the interpreter before the node does anything (:func:`hooks_of` names the step);
  ``on_success`` is told the gateway's decision, or that the timer fired (None) or the
  webhook's callback arrived (its data); ``on_failure`` that the node failed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from shardflow.context import WorkflowContext, record_result
from shardflow.context.history import FormData
from shardflow.engine.attempt import StepFailure, failed, is_cancellation, now, succeeded
from shardflow.engine.parking import Parked
from shardflow.model.gateways import ExclusiveGateway
from shardflow.model.groups import decide
from shardflow.model.plan import AnyNodePlan, EdgePlan, GatewayPlan, HumanPlan, Plan, WaitPlan
from shardflow.model.steps import BaseStep
from shardflow.model.tasks import HumanTask
from shardflow.model.waits import TimerStep, may_park

if TYPE_CHECKING:
    from shardflow.engine.interpreter import Interpreter


def passed(interp: Interpreter, path: str, started: float) -> None:
    """Log node ``path`` as completed (begun at ``started``), in the step log or statistics."""
    if interp.step_log is not None:
        interp.step_log.append((path, "completed", 1, started, now(), None))
    if interp.stats is not None:
        interp.stats.count(path, now() - started)


def answered(interp: Interpreter, ctx: WorkflowContext, path: str, data: dict[str, Any]) -> None:
    """Log the human step ``path`` as completed once its task's form ``data`` is in ``ctx``:
    the data is its record's ``result`` and ``output_data``, as litestar-workflows records a
    human step's execution (a run that keeps no step log only counts it)."""
    if interp.step_log is not None:
        record_result(ctx, path, FormData(data))
    passed(interp, path, now())


def passed_source(node: str, counted: bool, pad: str) -> list[str]:
    """The lines a compiled schedule logs a gateway node ``node`` with: :func:`passed`
    written out (``counted``: the schedule has ``durations``, else ``log``). A static plan
    may hold ``ParallelGateway`` nodes (a fork, ``engine/schedule.py``)."""
    if counted:
        return [f"{pad}durations[{node!r}].append(0.0)\n"]
    return [f"{pad}started = now()\n",
            f"{pad}log.append(({node!r}, 'completed', 1, started, now(), None))\n"]


async def exclusive_choice(node: str, gateway: ExclusiveGateway, outgoing: tuple[EdgePlan, ...],
                           ctx: WorkflowContext) -> list[bool]:
    """Which of ``outgoing`` the gateway takes for ``ctx``: the one edge to the node its
    condition names. A name that is no edge's target, or a failing condition, fails the
    gateway's node."""
    try:
        chosen = await decide(gateway.condition, ctx)
        taken = [edge.target == chosen for edge in outgoing]
        if not any(taken):
            targets = ", ".join(repr(e.target) for e in outgoing) or "none"
            raise ValueError(f"gateway {node!r} chose {chosen!r}, which is not one of its "
                             f"edge targets ({targets})")
    except BaseException as exc:
        if is_cancellation(exc):
            raise
        if isinstance(exc, Exception):
            await failed(gateway, ctx, exc, node)
        raise StepFailure(node, exc, ctx) from exc
    if gateway.hooked:
        await succeeded(gateway, ctx, node, chosen)
    return taken


async def run_wait(interp: Interpreter, node: str, plan: WaitPlan,
                   ctx: WorkflowContext) -> WorkflowContext | None:
    """Run a timer or webhook node: the context it ends with, or None once it parked."""
    step = plan.step
    started = now()
    due_in = None
    if isinstance(step, TimerStep):
        try:
            seconds = step.seconds(ctx)
        except Exception as exc:
            await failed(step, ctx, exc, node)
        if seconds <= step.park_after_seconds:
            if seconds > 0:  # a clock's sleep(0) may wait for its next tick (FakeClock does)
                ctx.current_step = node
                try:
                    await interp.clock.sleep(seconds)
                finally:
                    ctx.current_step = None
            if step.hooked:  # the timer fired
                await succeeded(step, ctx, node, None)
            passed(interp, node, started)
            return ctx
        due_in = seconds
    parked = Parked(node, ctx, [ctx])
    interp.open_task(parked, node, step, -1, due_in)
    interp.parked[node] = parked
    return None


def hooks_of(plan: AnyNodePlan) -> BaseStep | None:
    """The step whose hooks apply to a node that runs no attempt of its own: a human step,
    a gateway, a timer, a webhook (None for groups, whose members have their own)."""
    if isinstance(plan, HumanPlan | WaitPlan):
        return plan.step
    if isinstance(plan, GatewayPlan):
        return plan.gateway
    return None


TIMER_USER = "<timer>"
"""Who completed a timer's task when it fired (``completed_by``): not a person."""


def is_timer(plan: Plan, node: str) -> bool:
    """True if ``node`` of ``plan`` is a timer (its tasks are completed by time, not people)."""
    planned = plan.nodes.get(node)
    return isinstance(planned, WaitPlan) and isinstance(planned.step, TimerStep)


def parks_timers(plan: Plan) -> bool:
    """True if a timer of ``plan`` may park its instance (a computed duration, or one longer
    than its ``park_after_seconds``): a batch run of it watches for due timers."""
    return any(isinstance(planned, WaitPlan) and isinstance(planned.step, TimerStep)
               and may_park(planned.step) for planned in plan.nodes.values())


def wait_kinds(plan: Plan) -> dict[str, str]:
    """Node id -> task kind (``timer``, ``webhook``) of every timer and webhook of ``plan``:
    what a task store written before tasks had kinds learns from the workflow."""
    return {node: planned.step.step_type.value for node, planned in plan.nodes.items()
            if isinstance(planned, WaitPlan)}


def due_timers(plan: Plan, tasks: Iterable[HumanTask], at: float) -> list[HumanTask]:
    """The open tasks of parked timers of ``plan`` among ``tasks`` that are due at wall time
    ``at``: the in-process engine and ``shardflow resume`` complete these (with
    empty data, by :data:`TIMER_USER`) and the instance goes on."""
    return [t for t in tasks if not t.completed and t.due_at is not None and t.due_at <= at
            and is_timer(plan, t.node)]
