"""litestar-workflows' node kinds in process: gateways decide edges, sequential and
conditional groups run as one node, timers sleep or park, webhooks park until their callback,
and human form data may go to the top level of the context."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from engine.helpers import engine_for, history_of, settle, single, step, within, writer
from shardflow import (
    BaseHumanStep,
    ConditionalGroup,
    Edge,
    ExclusiveGateway,
    FakeClock,
    ParallelGateway,
    ParallelGroup,
    RaceGroup,
    RaceLostError,
    SequentialGroup,
    TaskNotFoundError,
    TimerStep,
    WebhookStep,
    WorkflowContext,
    WorkflowDefinition,
    WorkflowStatus,
    WorkflowValidationError,
)


def appender(name: str, item: str) -> Any:
    async def body(ctx: WorkflowContext) -> None:
        ctx.set("seen", [*ctx.get("seen", []), item])
    return step(name, body)


def routed(gateway: ExclusiveGateway) -> WorkflowDefinition:
    return WorkflowDefinition(
        name="routed",
        steps={"start": writer("start", started=True), "gate": gateway,
               "big": writer("big", size="big"), "small": writer("small", size="small"),
               "done": appender("done", "done")},
        edges=[Edge("start", "gate"), Edge("gate", "big"), Edge("gate", "small"),
               Edge("big", "done"), Edge("small", "done")],
        initial_step="start", terminal_steps={"done"})


@pytest.mark.parametrize("amount,taken,skipped", [(500, "big", "small"), (5, "small", "big")])
def test_an_exclusive_gateway_takes_the_edge_its_condition_names(
        run: Any, amount: int, taken: str, skipped: str) -> None:
    gate = ExclusiveGateway("gate", condition=lambda ctx: "big" if ctx.get("amount") > 100 else "small")
    engine = engine_for(routed(gate))
    instance = run(within(engine.start_workflow("routed", {"amount": amount})))
    assert instance.status == WorkflowStatus.COMPLETED
    assert instance.context.get("size") == taken
    assert instance.context.get("seen") == ["done"]  # the join after the gateway ran once
    assert [r.status for r in history_of(instance, skipped)] == ["skipped"]
    assert [r.status for r in history_of(instance, "gate")] == ["completed"]


def test_an_exclusive_gateway_naming_no_edge_fails_its_node(run: Any) -> None:
    async def choose(ctx: WorkflowContext) -> str:  # async conditions work too
        return "nowhere"
    engine = engine_for(routed(ExclusiveGateway("gate", condition=choose)))
    instance = run(within(engine.start_workflow("routed", {})))
    assert instance.status == WorkflowStatus.FAILED
    assert instance.error.step == "gate"
    assert "chose 'nowhere', which is not one of its edge targets ('big', 'small')" in instance.error.message


def fanout() -> WorkflowDefinition:
    return WorkflowDefinition(
        name="fanout",
        steps={"fork": ParallelGateway("fork", branches=["email", "sms"]),
               "email": writer("email", emailed=True), "sms": writer("sms", texted=True),
               "join": appender("join", "joined")},
        edges=[Edge("fork", "email"), Edge("fork", "sms"), Edge("email", "join"),
               Edge("sms", "join")],
        initial_step="fork", terminal_steps={"join"})


def test_a_parallel_gateway_forks_and_the_join_merges_every_branch(run: Any) -> None:
    definition = fanout()
    instance = run(within(engine_for(definition).start_workflow("fanout", {})))
    assert instance.status == WorkflowStatus.COMPLETED
    assert (instance.context.get("emailed"), instance.context.get("texted")) == (True, True)
    assert instance.context.get("seen") == ["joined"]


def test_a_parallel_gateway_whose_branches_are_not_its_edges_is_refused() -> None:
    definition = WorkflowDefinition(
        name="bad", steps={"fork": ParallelGateway("fork", branches=["a", "b"]),
                           "a": writer("a", a=1), "c": writer("c", c=1)},
        edges=[Edge("fork", "a"), Edge("fork", "c")], initial_step="fork")
    with pytest.raises(WorkflowValidationError) as info:
        engine_for(definition)
    kinds = {p.kind for p in info.value.problems}
    assert {"gateway_branch_without_edge", "gateway_edge_not_branch"} <= kinds


def test_a_sequential_group_runs_its_members_in_order_as_one_node(run: Any) -> None:
    group = SequentialGroup(appender("a", "a"), appender("b", "b"),
                            ParallelGroup(writer("x", x=1), writer("y", y=2), name="both"),
                            appender("c", "c"))
    definition = WorkflowDefinition(name="seq", steps={"seq": group, "after": appender("after", "after")},
                                    edges=[Edge("seq", "after")], initial_step="seq")
    instance = run(within(engine_for(definition).start_workflow("seq", {})))
    assert instance.status == WorkflowStatus.COMPLETED
    assert instance.context.get("seen") == ["a", "b", "c", "after"]
    assert (instance.context.get("x"), instance.context.get("y")) == (1, 2)
    assert [r.node for r in instance.history][:2] == ["seq/a", "seq/b"]


def test_a_failing_member_fails_the_sequence_and_the_rest_do_not_run(run: Any) -> None:
    async def boom(ctx: WorkflowContext) -> None:
        raise RuntimeError("card declined")
    group = SequentialGroup(appender("a", "a"), step("charge", boom), appender("ship", "ship"))
    instance = run(within(engine_for(single(group)).start_workflow("single", {})))
    assert instance.status == WorkflowStatus.FAILED
    assert instance.error.step == "node/charge"
    assert history_of(instance, "node/ship") == []


@pytest.mark.parametrize("tier,expected", [("gold", ["vip"]), ("silver", ["std"]), ("none", None)])
def test_a_conditional_group_runs_the_member_its_condition_chooses(
        run: Any, tier: str, expected: list[str] | None) -> None:
    group = ConditionalGroup(condition=lambda ctx: ctx.get("tier"),
                             branches={"gold": appender("vip", "vip"),
                                       "silver": SequentialGroup(appender("std", "std"))})
    instance = run(within(engine_for(single(group)).start_workflow("single", {"tier": tier})))
    assert instance.status == WorkflowStatus.COMPLETED
    assert instance.context.get("seen") == expected


def test_a_short_timer_sleeps_on_the_engine_clock(run: Any) -> None:
    async def main() -> None:
        clock = FakeClock()
        definition = WorkflowDefinition(
            name="wait", steps={"wait": TimerStep("wait", duration=timedelta(seconds=30)),
                                "after": appender("after", "after")},
            edges=[Edge("wait", "after")], initial_step="wait")
        engine = engine_for(definition, clock=clock)
        started = __import__("asyncio").ensure_future(engine.start_workflow("wait", {}))
        await clock.wait_for_timers(1)
        clock.advance(29)
        await settle()
        assert not started.done()
        clock.advance(1)
        instance = await within(started)
        assert instance.status == WorkflowStatus.COMPLETED
        assert instance.context.get("seen") == ["after"]
    run(main())


def test_a_zero_timer_does_not_wait_for_the_clock(run: Any) -> None:
    definition = single(TimerStep("now", duration=lambda ctx: timedelta(seconds=ctx.get("wait"))))
    engine = engine_for(definition, clock=FakeClock())
    for wait in (0, -5):  # a negative duration waits nothing
        instance = run(within(engine.start_workflow("single", {"wait": wait})))
        assert instance.status == WorkflowStatus.COMPLETED


async def until_not_waiting(instance: Any) -> None:
    """Let the loop run until a fired alarm has continued ``instance`` (bounded)."""
    for _ in range(100):
        if instance.status != WorkflowStatus.WAITING:
            return
        await settle()


def long_timer() -> WorkflowDefinition:
    return WorkflowDefinition(
        name="wait", steps={"wait": TimerStep("wait", duration=lambda ctx: timedelta(hours=ctx.get("hours"))),
                            "after": appender("after", "after")},
        edges=[Edge("wait", "after")], initial_step="wait")


def test_a_long_timer_parks_the_instance_and_fires_when_due(run: Any) -> None:
    async def main() -> None:
        clock = FakeClock()
        engine = engine_for(long_timer(), clock=clock)
        instance = await within(engine.start_workflow("wait", {"hours": 2}))
        assert instance.status == WorkflowStatus.WAITING
        (task,) = engine.pending_tasks(instance.id, kind="timer")
        assert task.node == "wait" and 7190 < task.due_at - task.created_at <= 7200
        clock.advance(7100)
        await settle()
        assert instance.status == WorkflowStatus.WAITING
        clock.advance(200)
        await until_not_waiting(instance)
        assert instance.status == WorkflowStatus.COMPLETED
        assert instance.context.get("seen") == ["after"]
        assert engine.get_task(task.id).completed_by == "<timer>"
    run(main())


def test_a_cancelled_instance_s_timer_does_not_fire(run: Any, tmp_path: Any,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    from shardflow import SQLiteTaskStore

    async def main() -> None:
        clock = FakeClock()
        engine = engine_for(long_timer(), clock=clock, store=SQLiteTaskStore(tmp_path / "tasks.db"))
        instance = await within(engine.start_workflow("wait", {"hours": 1}))
        await engine.cancel_workflow(instance.id)
        clock.advance(7200)
        await settle()
        assert instance.status == WorkflowStatus.CANCELLED
        assert instance.context.get("seen") is None
    run(main())
    assert "firing timer task" not in caplog.text


def test_fire_due_timers_continues_only_the_timers_that_are_due(run: Any) -> None:
    async def main() -> None:
        engine = engine_for(long_timer(), clock=FakeClock())
        soon = await within(engine.start_workflow("wait", {"hours": 1}))
        later = await within(engine.start_workflow("wait", {"hours": 5}))
        (task,) = engine.pending_tasks(soon.id, kind="timer")
        fired = await engine.fire_due_timers(at=task.due_at)
        assert [i.id for i in fired] == [soon.id]
        assert soon.status == WorkflowStatus.COMPLETED and later.status == WorkflowStatus.WAITING
    run(main())


def test_an_engine_restarted_from_its_store_fires_the_timers_of_the_one_before(
        run: Any, tmp_path: Any) -> None:
    from shardflow import SQLiteTaskStore

    async def main() -> None:
        first = engine_for(long_timer(), clock=FakeClock(), store=SQLiteTaskStore(tmp_path / "t.db"))
        due = await within(first.start_workflow("wait", {"hours": 0.5}))
        later = await within(first.start_workflow("wait", {"hours": 3}))
        (task,) = first.pending_tasks(due.id, kind="timer")
        clock = FakeClock()
        second = engine_for(long_timer(), clock=clock, store=SQLiteTaskStore(tmp_path / "t.db"))
        fired = await second.fire_due_timers(at=task.due_at + 1)
        assert [i.id for i in fired] == [due.id]
        assert fired[0].status == WorkflowStatus.COMPLETED
        restored = second.get_instance(later.id)
        assert restored.status == WorkflowStatus.WAITING
        clock.advance(4 * 3600)  # its alarm, set by fire_due_timers, fires on the new clock
        await until_not_waiting(restored)
        assert restored.status == WorkflowStatus.COMPLETED
        assert restored.context.get("seen") == ["after"]
    run(main())


def test_a_webhook_parks_until_its_callback_and_stores_the_data_under_its_key(run: Any) -> None:
    async def main() -> None:
        definition = WorkflowDefinition(
            name="pay", steps={"wait_payment": WebhookStep("wait_payment", callback_key="payment"),
                               "ship": appender("ship", "ship")},
            edges=[Edge("wait_payment", "ship")], initial_step="wait_payment")
        engine = engine_for(definition)
        instance = await within(engine.start_workflow("pay", {}))
        assert instance.status == WorkflowStatus.WAITING
        with pytest.raises(TaskNotFoundError):
            await engine.complete_webhook(instance.id, "ship", {})
        await within(engine.complete_webhook(instance.id, "wait_payment", {"paid": 42}))
        assert instance.status == WorkflowStatus.COMPLETED
        assert instance.context.get("payment") == {"paid": 42}
        assert instance.context.get("seen") == ["ship"]
    run(main())


def test_a_webhook_parked_by_one_engine_is_completed_by_the_next(run: Any, tmp_path: Any) -> None:
    from shardflow import SQLiteTaskStore

    definition = WorkflowDefinition(
        name="pay", steps={"wait_payment": WebhookStep("wait_payment", callback_key="payment"),
                           "ship": appender("ship", "ship")},
        edges=[Edge("wait_payment", "ship")], initial_step="wait_payment")

    async def main() -> None:
        first = engine_for(definition, store=SQLiteTaskStore(tmp_path / "t.db"))
        instance = await within(first.start_workflow("pay", {}))
        second = engine_for(definition, store=SQLiteTaskStore(tmp_path / "t.db"))
        done = await within(second.complete_webhook(instance.id, "wait_payment", {"paid": 1}))
        assert done.status == WorkflowStatus.COMPLETED
        assert done.context.get("payment") == {"paid": 1} and done.context.get("seen") == ["ship"]
    run(main())


class TopLevelApproval(BaseHumanStep):
    title = "Approve"
    form_data_at_top_level = True


def test_form_data_at_top_level_is_an_opt_in(run: Any) -> None:
    async def main() -> None:
        definition = WorkflowDefinition(
            name="approve", steps={"review": TopLevelApproval(), "other": BaseHumanStep("other", "Other")},
            edges=[Edge("review", "other")], initial_step="review")
        engine = engine_for(definition)
        instance = await within(engine.start_workflow("approve", {}))
        (task,) = engine.pending_tasks(instance.id)
        await engine.complete_human_task(task.id, {"approved": True})
        (task,) = engine.pending_tasks(instance.id)
        await engine.complete_human_task(task.id, {"approved": False})
        assert instance.status == WorkflowStatus.COMPLETED
        assert instance.context.get("approved") is True
        assert instance.context.get("review") is None
        assert instance.context.get("other.approved") is False  # the default: under the node id
    run(main())


def test_one_top_level_form_among_parallel_approvals_merges_without_conflict(run: Any) -> None:
    async def main() -> None:
        group = ParallelGroup(TopLevelApproval("legal"), BaseHumanStep("finance", "Finance"))
        engine = engine_for(single(group))
        instance = await within(engine.start_workflow("single", {}))
        for task in engine.pending_tasks(instance.id):
            await engine.complete_human_task(task.id, {"approved": task.step == "legal"})
        assert instance.status == WorkflowStatus.COMPLETED
        assert instance.context.get("approved") is True
        assert instance.context.get("finance.approved") is False
    run(main())


def test_two_top_level_forms_that_may_run_in_parallel_are_refused() -> None:
    nodes = WorkflowDefinition(
        name="p", steps={"fork": writer("fork", f=1), "a": TopLevelApproval("a"),
                         "b": TopLevelApproval("b")},
        edges=[Edge("fork", "a"), Edge("fork", "b")], initial_step="fork")
    group = single(ParallelGroup(TopLevelApproval("a"), TopLevelApproval("b")))
    for definition in (nodes, group):
        with pytest.raises(WorkflowValidationError) as info:
            engine_for(definition)
        assert [p.kind for p in info.value.problems] == ["top_level_form_conflict"]


@pytest.mark.parametrize("member", [TimerStep("t", timedelta(seconds=1)), WebhookStep("w"),
                                    ExclusiveGateway("g", condition=lambda ctx: "x")])
def test_timers_webhooks_and_gateways_must_be_nodes(member: Any) -> None:
    with pytest.raises(WorkflowValidationError) as info:
        engine_for(single(SequentialGroup(writer("a", a=1), member)))
    assert [p.kind for p in info.value.problems] == ["kind_in_group"]


@pytest.mark.parametrize("counted", [False, True])
def test_a_parallel_gateway_plan_compiles_and_runs_as_interpreted(
        counted: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from engine.test_schedule import interpreted, summary
    from shardflow.engine.runner import InstanceRunner
    from shardflow.engine.schedule import is_static
    from shardflow.engine.stepstats import StepStats

    async def outcomes(definition: WorkflowDefinition) -> tuple[Any, Any]:
        stats = StepStats() if counted else None
        runner = InstanceRunner(definition, stats=stats)
        done = [summary(await runner.run(f"i{i}", {"i": i})) for i in range(3)]
        return done, sorted(stats.rows()) if stats else None

    definition = fanout()
    assert is_static(definition.plan)
    compiled = asyncio.run(outcomes(definition))
    assert definition.plan.schedules, "the compiled schedule did not run"
    with monkeypatch.context() as patch:
        interpreted(patch)
        expected = asyncio.run(outcomes(fanout()))
    assert compiled == expected
    assert compiled[0][0][0] == WorkflowStatus.COMPLETED


def test_gateway_and_group_mistakes_are_named_by_validation() -> None:
    definition = WorkflowDefinition(
        name="bad",
        steps={"gate": ExclusiveGateway("gate", condition=lambda ctx: "a"),
               "a": writer("a", a=1), "b": writer("b", b=1),
               "pick": ConditionalGroup(condition="tier", branches={})},  # type: ignore[arg-type]
        edges=[Edge("gate", "a", condition=lambda ctx: True), Edge("gate", "b"), Edge("a", "pick")],
        initial_step="gate")
    with pytest.raises(WorkflowValidationError) as info:
        engine_for(definition)
    found = {(p.kind, tuple(p.names)) for p in info.value.problems}
    assert found == {("gateway_edge_condition", ("gate", "a")), ("bad_condition", ("pick",)),
                     ("no_branches", ("pick",))}


class RacingEngine:
    """An engine whose steps finish one at a time in the order ``finish`` gives (step name:
    result, or an exception to raise). A failure hands the turn to the next step; a success
    keeps it, so the steps after a winner wait until the race cancels them."""

    def __init__(self, finish: list[tuple[str, Any]]) -> None:
        self.finish = finish
        self.turns = {name: asyncio.Event() for name, _ in finish}
        self.turns[finish[0][0]].set()
        self.cancelled: list[str] = []

    async def execute_step(self, step: Any, context: WorkflowContext,
                           previous_result: Any = None) -> Any:
        try:
            await self.turns[step.name].wait()
        except asyncio.CancelledError:
            self.cancelled.append(step.name)
            raise
        outcome = dict(self.finish)[step.name]
        if not isinstance(outcome, Exception):
            return outcome
        names = [name for name, _ in self.finish]
        if step.name != names[-1]:
            self.turns[names[names.index(step.name) + 1]].set()
        raise outcome


def test_a_race_outside_a_definition_returns_the_first_success_and_cancels_the_rest(
        run: Any) -> None:
    async def main() -> None:
        context = WorkflowContext({})
        race = RaceGroup(writer("slow", s=1), writer("broken", b=1), writer("fast", f=1),
                         name="fetch")
        engine = RacingEngine([("broken", ValueError("down")), ("fast", "won"),
                               ("slow", "late")])
        assert await race.execute(context, engine) == "won"
        assert engine.cancelled == ["slow"]  # awaited: its cancellation ran before the return
        lost = RacingEngine([("slow", KeyError("a")), ("broken", ValueError("b")),
                             ("fast", TypeError("c"))])
        with pytest.raises(RaceLostError) as info:
            await race.execute(context, lost)
        assert list(info.value.errors) == ["slow", "broken", "fast"]
        nested = ParallelGroup(RaceGroup(writer("fast", f=1), name="r"))
        assert await nested.execute(context, RacingEngine([("fast", "won")])) == ["won"]
    run(main())


class RecordingEngine:
    """What ``group.execute(context, engine)`` asks of an engine: ``execute_step``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    async def execute_step(self, step: Any, context: WorkflowContext,
                           previous_result: Any = None) -> Any:
        self.calls.append((step.name, previous_result))
        return f"{step.name}:{previous_result}"


def test_groups_run_outside_a_definition_through_an_engine_s_execute_step(run: Any) -> None:
    async def main() -> None:
        context = WorkflowContext({"tier": "gold"})
        engine = RecordingEngine()
        chain = SequentialGroup(writer("a", a=1), writer("b", b=1))
        assert await chain.execute(context, engine) == "b:a:None"
        assert engine.calls == [("a", None), ("b", "a:None")]
        pick = ConditionalGroup(lambda ctx: ctx.get("tier"), {"gold": writer("vip", v=1)})
        assert await pick.execute(context, engine) == "vip:None"
        assert await ConditionalGroup(lambda ctx: "none", {}).execute(context, engine) is None
        chord = ParallelGroup(writer("x", x=1), writer("y", y=1), callback=writer("sum", s=1))
        assert await chord.execute(context, engine) == "sum:['x:None', 'y:None']"
    run(main())
