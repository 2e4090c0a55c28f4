"""litestar-workflows' engine API on ``LocalExecutionEngine``, and the events it publishes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from engine.helpers import step, within
from shardflow import (
    BaseHumanStep,
    BaseMachineStep,
    Edge,
    EventBus,
    LocalExecutionEngine,
    WorkflowContext,
    WorkflowDefinition,
    WorkflowRegistry,
    WorkflowStatus,
)
from shardflow.errors import InstanceNotFoundError


class Review(BaseHumanStep):
    title = "Review the order"
    form_schema = {"type": "object", "properties": {"approved": {"type": "boolean"}}}


class Ship(BaseMachineStep):
    async def execute(self, context: WorkflowContext) -> Any:
        context.set("shipped", True)
        return datetime(2026, 1, 1)  # not JSON: recorded, never stored


class Skipped(BaseMachineStep):
    async def can_execute(self, context: WorkflowContext) -> bool:
        return False

    async def execute(self, context: WorkflowContext) -> Any:
        raise AssertionError("a refused step must not run")


class OrderWorkflow:
    """A workflow class the litestar-workflows way: the registry and the engine take it."""

    @classmethod
    def get_definition(cls) -> WorkflowDefinition:
        return WorkflowDefinition(
            name="order", steps={"review": Review(), "ship": Ship(), "note": Skipped()},
            edges=[Edge("review", "ship"), Edge("ship", "note")], initial_step="review",
            terminal_steps={"note"})


def _engine(bus: Any = None) -> LocalExecutionEngine:
    registry = WorkflowRegistry()
    registry.register(OrderWorkflow)
    return LocalExecutionEngine(registry, None, bus)


def test_a_workflow_class_runs_through_human_task_completion_by_step_name(run: Any) -> None:
    async def main() -> Any:
        engine = _engine()
        instance = await engine.start_workflow(OrderWorkflow, {"order": 1}, user_id="u1")
        assert instance.status == WorkflowStatus.WAITING
        assert instance.current_step == "review"
        assert (await engine.get_instance(instance.id)) is instance
        assert engine.get_running_instances() == [instance]
        context = instance.context
        assert (context.workflow_id, context.user_id) == ("order", "u1")
        assert context.started_at is not None and context.started_at.tzinfo is not None
        done = await within(engine.complete_human_task(instance.id, "review", "alice",
                                                       {"approved": True}))
        assert engine.get_running_instances() == []
        return done

    instance = run(main())
    assert instance.status == WorkflowStatus.COMPLETED
    assert instance.current_step is None
    assert instance.context.data == {"order": 1, "review": {"approved": True}, "shipped": True}
    history = [(e.step_name, e.status) for e in instance.context.step_history]
    assert history == [("review", "succeeded"), ("ship", "succeeded"), ("note", "skipped")]
    assert instance.context.get_last_execution("ship").result == datetime(2026, 1, 1)


def test_get_instance_of_an_unknown_id_raises_awaited_or_not(run: Any) -> None:
    async def main() -> None:
        engine = _engine()
        with pytest.raises(InstanceNotFoundError):
            await engine.get_instance("nope")
        with pytest.raises(KeyError):
            engine.get_instance("nope")

    run(main())


def test_execute_step_passes_the_previous_result_and_records_the_execution(run: Any) -> None:
    async def body(context: WorkflowContext) -> Any:
        return context.get("_previous_result")["n"] + 1

    async def main() -> tuple[Any, WorkflowContext]:
        context = WorkflowContext({"x": 1})
        result = await _engine().execute_step(step("add", body), context, previous_result={"n": 1})
        return result, context

    result, context = run(main())
    assert result == 2
    [execution] = context.step_history
    assert (execution.step_name, execution.status, execution.result) == ("add", "succeeded", 2)


def test_events_of_a_run_reach_the_subscribers_in_order(run: Any) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    bus = EventBus()
    bus.subscribe(lambda e: events.append((e.event_type, e.to_dict())))

    async def main() -> Any:
        engine = _engine(bus)
        instance = await engine.start_workflow("order")
        return await within(engine.complete_human_task(instance.id, "review", "bob",
                                                       {"approved": False}))

    instance = run(main())
    assert [kind for kind, _ in events] == [
        "workflow.started", "human_task.created", "workflow.waiting",
        "human_task.completed", "step.started", "step.completed", "step.started",
        "step.skipped", "workflow.completed"]
    assert all(fields["instance_id"] == instance.id for _, fields in events)
    created = events[1][1]
    assert (created["step_name"], created["title"]) == ("review", "Review the order")
    assert events[3][1]["completed_by"] == "bob"
    assert events[5][1]["result"] == "2026-01-01T00:00:00"  # to_dict: ISO 8601


def test_a_failure_and_a_cancellation_are_published(run: Any) -> None:
    class Boom(BaseMachineStep):
        async def execute(self, context: WorkflowContext) -> Any:
            raise RuntimeError("card declined")

    events: list[tuple[str, dict[str, Any]]] = []

    class Recorder:  # any bus with litestar-workflows' emit protocol
        async def emit(self, event_type: str, **fields: Any) -> None:
            events.append((event_type, fields))

    registry = WorkflowRegistry()
    registry.register_definition(WorkflowDefinition(
        name="boom", steps={"b": Boom()}, edges=[], initial_step="b", terminal_steps={"b"}))
    registry.register(OrderWorkflow)

    async def main() -> Any:
        engine = LocalExecutionEngine(registry, event_bus=Recorder())
        failed = await engine.start_workflow("boom")
        waiting = await engine.start_workflow("order")
        await engine.cancel_workflow(waiting.id, reason="customer left")
        return failed, waiting

    failed, waiting = run(main())
    assert failed.error == "card declined" and "declined" in failed.error
    kinds = [kind for kind, _ in events]
    assert kinds[:4] == ["workflow.started", "step.started", "step.failed", "workflow.failed"]
    assert events[3][1]["failed_step"] == "b" and events[3][1]["error_type"] == "RuntimeError"
    assert waiting.status is WorkflowStatus.CANCELED
    cancelled = [fields for kind, fields in events if kind == "workflow.canceled"]
    assert cancelled == [{"instance_id": waiting.id, "reason": "customer left",
                          "current_step": "review"}]


def test_a_bus_without_subscribers_leaves_plans_compiled(run: Any) -> None:
    """No cost when nobody subscribes: the instance is not made to report its steps."""
    calls: list[str] = []

    async def body(context: WorkflowContext) -> None:
        calls.append("ran")

    registry = WorkflowRegistry()
    registry.register_definition(WorkflowDefinition(
        name="quiet", steps={"a": step("a", body)}, edges=[], initial_step="a",
        terminal_steps={"a"}))
    bus = EventBus()
    engine = LocalExecutionEngine(registry, event_bus=bus)
    seen: list[Any] = []

    async def main() -> Any:
        first = await engine.start_workflow("quiet")
        bus.subscribe(seen.append, "step.completed")
        await engine.start_workflow("quiet")
        return first

    first = run(main())
    assert first.status == WorkflowStatus.COMPLETED and calls == ["ran", "ran"]
    assert [e.step_name for e in seen] == ["a"]  # only the run after the subscription


def test_litestar_persistence_saves_each_stop_and_loads_unknown_instances(run: Any) -> None:
    class Persistence:  # litestar-workflows' protocol
        def __init__(self) -> None:
            self.saved: list[tuple[str, WorkflowStatus]] = []
            self.stored: dict[str, Any] = {}

        async def save_instance(self, instance: Any) -> None:
            self.saved.append((instance.id, instance.status))
            self.stored[instance.id] = instance

        async def load_instance(self, instance_id: str) -> Any:
            return self.stored.get(instance_id)

    persistence = Persistence()
    registry = WorkflowRegistry()
    registry.register(OrderWorkflow)

    async def main() -> Any:
        engine = LocalExecutionEngine(registry, persistence)
        instance = await engine.start_workflow("order")
        await engine.cancel_workflow(instance.id, "duplicate")
        later = LocalExecutionEngine(registry, persistence)  # another process, say
        return instance, await later.get_instance(instance.id)

    instance, loaded = run(main())
    assert persistence.saved == [(instance.id, WorkflowStatus.RUNNING),
                                 (instance.id, WorkflowStatus.WAITING),
                                 (instance.id, WorkflowStatus.CANCELLED)]
    assert loaded is instance
