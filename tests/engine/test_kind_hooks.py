"""Step hooks on every node kind: ``can_execute`` skips a human step, a gateway, a timer or a
webhook as it skips a machine step (no task, the skip recorded and propagated); ``on_success``
is told when the kind succeeds (a human task or webhook callback completed, a timer fired, a
gateway decided) and ``on_failure`` when it fails. In process and in a batch worker; a
parallel gateway with hooks is interpreted, one without stays compiled."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import orjson
import pytest

from engine.helpers import engine_for, history_of, within, writer
from shardflow import (
    BaseHumanStep,
    Edge,
    ExclusiveGateway,
    FakeClock,
    ParallelGateway,
    ParallelGroup,
    TimerStep,
    WebhookStep,
    WorkflowContext,
    WorkflowDefinition,
    WorkflowStatus,
)
from shardflow.engine.results import parse_line
from shardflow.engine.rows import JobKind
from shardflow.engine.schedule import schedule_for
from shardflow.engine.shard import ShardJob, ShardRunner

CALLS: list[tuple[Any, ...]] = []


class Hooks:
    """The three hooks, recording their calls; ``can_execute`` reads ``context['allow']``."""

    name: str

    async def can_execute(self, context: WorkflowContext) -> bool:
        CALLS.append(("can_execute", self.name))
        return bool(context.get("allow", True))

    async def on_success(self, context: WorkflowContext, result: Any) -> None:
        CALLS.append(("on_success", self.name, result))

    async def on_failure(self, context: WorkflowContext, error: BaseException) -> None:
        CALLS.append(("on_failure", self.name, str(error)))


class Approval(Hooks, BaseHumanStep):
    name = "approve"
    title = "Approve"


class Route(Hooks, ExclusiveGateway):
    pass


class Fan(Hooks, ParallelGateway):
    pass


class Wait(Hooks, TimerStep):
    pass


class Callback(Hooks, WebhookStep):
    pass


def _around(node: Any) -> WorkflowDefinition:
    """start -> node -> after -> done, and start -> audit -> done: refusing ``node`` skips
    ``after``, and the join ``done`` still runs on the audit's edge."""
    name = node.name
    return WorkflowDefinition(
        name=f"around_{name}",
        steps={"start": writer("start", started=True), name: node,
               "after": writer("after", after=True), "audit": writer("audit", audited=True),
               "done": writer("done", done=True)},
        edges=[Edge("start", name), Edge("start", "audit"), Edge(name, "after"),
               Edge("after", "done"), Edge("audit", "done")],
        initial_step="start", terminal_steps={"done"})


def _kinds(timer: timedelta = timedelta(seconds=5)) -> list[Any]:
    return [Approval(), Route("route", condition=lambda ctx: "after"),
            Fan("fan", branches=["after"]), Wait("wait", timer),
            Callback("hook", callback_key="payload")]


@pytest.mark.parametrize("node", _kinds(), ids=lambda n: type(n).__name__)
def test_can_execute_false_skips_every_kind_and_the_skip_propagates(run: Any, node: Any) -> None:
    CALLS.clear()
    engine = engine_for(_around(node))
    instance = run(within(engine.start_workflow(f"around_{node.name}", {"allow": False})))
    assert instance.status == WorkflowStatus.COMPLETED  # no task opened, nothing waits
    assert [r.status for r in history_of(instance, node.name)] == ["skipped"]
    assert [r.status for r in history_of(instance, "after")] == ["skipped"]
    assert instance.context.get("audited") and instance.context.get("done")
    assert instance.context.get("after") is None
    assert [("can_execute", node.name)] == CALLS


def test_a_human_step_allowed_opens_its_task_and_on_success_gets_the_form(run: Any) -> None:
    CALLS.clear()

    async def main() -> Any:
        engine = engine_for(_around(Approval()))
        instance = await within(engine.start_workflow("around_approve", {"allow": True}))
        assert instance.status == WorkflowStatus.WAITING
        assert CALLS == [("can_execute", "approve")]
        (task,) = engine.pending_tasks()
        return await within(engine.complete_human_task(task.id, {"ok": True}))

    instance = run(main())
    assert instance.status == WorkflowStatus.COMPLETED
    assert CALLS == [("can_execute", "approve"), ("on_success", "approve", {"ok": True})]
    assert instance.context.get("after") is True


def test_gateways_tell_on_success_what_they_decided(run: Any) -> None:
    for node, decided in ((Route("route", condition=lambda ctx: "after"), "after"),
                          (Fan("fan", branches=["after"]), ["after"])):
        CALLS.clear()
        instance = run(within(engine_for(_around(node)).start_workflow(f"around_{node.name}")))
        assert instance.status == WorkflowStatus.COMPLETED
        assert [("can_execute", node.name), ("on_success", node.name, decided)] == CALLS


def test_a_failing_gateway_tells_on_failure(run: Any) -> None:
    CALLS.clear()
    node = Route("route", condition=lambda ctx: "nowhere")
    instance = run(within(engine_for(_around(node)).start_workflow("around_route")))
    assert instance.status == WorkflowStatus.FAILED and instance.error.step == "route"
    assert CALLS[0] == ("can_execute", "route") and CALLS[1][:2] == ("on_failure", "route")
    assert "'nowhere'" in CALLS[1][2]


def test_a_timer_tells_on_success_when_it_fires_short_or_parked(run: Any) -> None:
    async def short() -> Any:
        clock = FakeClock()
        engine = engine_for(_around(Wait("wait", timedelta(seconds=5))), clock=clock)
        started = asyncio.ensure_future(engine.start_workflow("around_wait"))
        await clock.wait_for_timers(1)
        assert CALLS == [("can_execute", "wait")]  # asleep, not fired yet
        clock.advance(5)
        return await within(started)

    async def parked() -> Any:
        engine = engine_for(_around(Wait("wait", timedelta(hours=1))), clock=FakeClock())
        instance = await within(engine.start_workflow("around_wait"))
        assert instance.status == WorkflowStatus.WAITING
        assert CALLS == [("can_execute", "wait")]
        (task,) = engine.pending_tasks(instance.id, kind="timer")
        (fired,) = await within(engine.fire_due_timers(at=task.due_at))
        return fired

    for main in (short, parked):
        CALLS.clear()
        instance = run(main())
        assert instance.status == WorkflowStatus.COMPLETED, main
        assert CALLS == [("can_execute", "wait"), ("on_success", "wait", None)], main


def test_a_webhook_tells_on_success_when_its_callback_arrives(run: Any) -> None:
    CALLS.clear()

    async def main() -> Any:
        engine = engine_for(_around(Callback("hook", callback_key="payload")))
        instance = await within(engine.start_workflow("around_hook"))
        assert CALLS == [("can_execute", "hook")]
        return await within(engine.complete_webhook(instance.id, "hook", {"paid": 3}))

    instance = run(main())
    assert instance.status == WorkflowStatus.COMPLETED
    assert CALLS == [("can_execute", "hook"), ("on_success", "hook", {"paid": 3})]
    assert instance.context.get("payload") == {"paid": 3}


def test_a_parallel_gateway_with_hooks_is_interpreted_one_without_stays_compiled() -> None:
    hooked = _around(Fan("fan", branches=["after"]))
    plain = _around(ParallelGateway("fan", branches=["after"]))
    assert schedule_for(hooked.plan, (False, False)) is None
    assert schedule_for(plain.plan, (False, False)) is not None


def test_hooks_of_every_kind_are_honoured_in_a_batch_worker(run: Any) -> None:
    for node in _kinds(timedelta(milliseconds=1)):  # the worker's clock is real
        CALLS.clear()
        jobs = [ShardJob(i, i, 1, JobKind.NEW, orjson.dumps({"id": i, "allow": i == 1}))
                for i in range(2)]
        out = run(within(ShardRunner(_around(node)).run_batch(jobs)))
        records = {parse_line(line)["id"]: parse_line(line) for line in out.lines}
        refused, allowed = records[0], records[1]
        assert refused["status"] == "completed" and "after" not in refused["context"], node
        waits = isinstance(node, BaseHumanStep | WebhookStep)
        assert allowed["status"] == ("waiting" if waits else "completed"), node
        asked = [c for c in CALLS if c[0] == "can_execute"]
        assert len(asked) == 2, node


class Legal(Approval):
    name = "legal"


def test_a_human_branch_of_a_group_refused_opens_no_task_and_adds_no_writes(run: Any) -> None:
    CALLS.clear()
    group = ParallelGroup(Approval(), Legal(), name="approvals")
    definition = WorkflowDefinition(
        name="grouped", steps={"approvals": group, "after": writer("after", after=True)},
        edges=[Edge("approvals", "after")], initial_step="approvals", terminal_steps={"after"})

    async def main() -> Any:
        engine = engine_for(definition)
        instance = await within(engine.start_workflow("grouped", {"allow": False}))
        assert instance.status == WorkflowStatus.COMPLETED  # both refused: nothing to wait for
        assert {r.node: r.status for r in instance.history}["approvals/legal"] == "skipped"
        assert instance.context.get("legal") is None
        CALLS.clear()
        waiting = await within(engine.start_workflow("grouped", {"allow": True}))
        tasks = engine.pending_tasks(waiting.id)
        assert sorted(t.step for t in tasks) == ["approve", "legal"]
        for task in tasks:
            done = await within(engine.complete_human_task(task.id, {"by": task.step}))
        return done

    instance = run(main())
    assert instance.status == WorkflowStatus.COMPLETED
    assert instance.context.get("legal") == {"by": "legal"}
    assert sorted(c for c in CALLS if c[0] == "on_success") == [
        ("on_success", "approve", {"by": "approve"}), ("on_success", "legal", {"by": "legal"})]
