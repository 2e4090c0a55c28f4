"""The instance half of litestar-workflows' engine API: errors a caller meets (not found, not
waiting, waiting elsewhere), cancelling an instance while its step runs, and instances loaded
from litestar-workflows' persistence (``WorkflowInstanceData``)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from engine.helpers import engine_for, step, within
from shardflow import (
    BaseHumanStep,
    Edge,
    LocalExecutionEngine,
    WorkflowContext,
    WorkflowDefinition,
    WorkflowInstance,
    WorkflowInstanceData,
    WorkflowRegistry,
    WorkflowStatus,
)
from shardflow.errors import (
    InstanceNotFoundError,
    InstanceNotWaitingError,
    NotWaitingAtStepError,
    TaskNotFoundError,
)


class Approve(BaseHumanStep):
    title = "Approve"


def _approval() -> WorkflowDefinition:
    async def body(context: WorkflowContext) -> None:
        context.set("done", True)

    return WorkflowDefinition(
        name="approval", steps={"approve": Approve(), "finish": step("finish", body)},
        edges=[Edge("approve", "finish")], initial_step="approve")


class Recorder:
    """litestar-workflows' two protocols at once: an event bus and a persistence."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.saved: list[WorkflowStatus] = []
        self.stored: dict[Any, Any] = {}
        self.loads = 0

    async def emit(self, event_type: str, **fields: Any) -> None:
        self.events.append((event_type, fields))

    async def save_instance(self, instance: Any) -> None:
        self.saved.append(instance.status)
        self.stored[instance.id] = instance

    async def load_instance(self, instance_id: Any) -> Any:
        self.loads += 1
        return self.stored.get(instance_id)


def test_not_found_errors_say_not_found_and_stay_key_errors(run: Any) -> None:
    assert str(InstanceNotFoundError("i-1")) == "workflow instance 'i-1' not found"
    assert str(TaskNotFoundError("t-1")) == "human task 't-1' not found"
    assert isinstance(InstanceNotFoundError("i"), KeyError)

    async def main() -> None:
        engine = engine_for(_approval())
        with pytest.raises(KeyError, match="workflow instance 'nope' not found"):
            await engine.get_instance("nope")
        with pytest.raises(TaskNotFoundError, match="human task 'nope' not found"):
            await engine.complete_human_task("nope", {})

    run(main())


def test_completing_by_step_name_says_why_the_instance_cannot_take_it(run: Any) -> None:
    async def main() -> None:
        engine = engine_for(_approval())
        instance = await within(engine.start_workflow("approval"))
        assert engine.get_instance(instance.id) is instance  # the engine's live record
        with pytest.raises(NotWaitingAtStepError) as elsewhere:
            await engine.complete_human_task(instance.id, "finish", "ann", {})
        error = elsewhere.value
        assert isinstance(error, ValueError) and isinstance(error, TaskNotFoundError)
        assert "waiting at step 'approve'" in str(error) and "'finish'" in str(error)
        assert instance.id in str(error)
        assert (error.instance_id, error.step_name, error.waiting_at) == (
            instance.id, "finish", ("approve",))

        await within(engine.complete_human_task(instance.id, "approve", "ann", {}))
        assert instance.status is WorkflowStatus.COMPLETED
        with pytest.raises(InstanceNotWaitingError) as finished:
            await engine.complete_human_task(instance.id, "approve", "ann", {})
        error2 = finished.value
        assert isinstance(error2, ValueError) and isinstance(error2, TaskNotFoundError)
        assert f"workflow instance '{instance.id}' is not waiting (status: completed)" in str(
            error2)
        assert (error2.instance_id, error2.status) == (instance.id, WorkflowStatus.COMPLETED)

    run(main())


def test_cancelling_a_running_instance_saves_it_and_publishes_the_reason(run: Any) -> None:
    started = asyncio.Event()

    async def slow(context: WorkflowContext) -> None:
        started.set()
        await asyncio.Event().wait()  # runs until cancelled

    definition = WorkflowDefinition(name="slow", steps={"s": step("s", slow)}, edges=[],
                                    initial_step="s")
    recorder = Recorder()
    registry = WorkflowRegistry()
    registry.register_definition(definition)

    async def main() -> WorkflowInstance:
        engine = LocalExecutionEngine(registry, recorder, recorder)
        starting = asyncio.ensure_future(engine.start_workflow("slow"))
        await within(started.wait())
        [running] = engine.get_running_instances()
        assert running.status is WorkflowStatus.RUNNING
        cancelled = await within(engine.cancel_workflow(running.id, "customer left"))
        assert await within(starting) is cancelled is running
        return cancelled

    instance = run(main())
    assert instance.status is WorkflowStatus.CANCELLED
    assert recorder.saved == [WorkflowStatus.RUNNING, WorkflowStatus.CANCELLED]
    kinds = [kind for kind, _ in recorder.events]
    assert kinds == ["workflow.started", "step.started", "workflow.canceled"]
    assert recorder.events[-1][1]["reason"] == "customer left"
    assert recorder.events[-1][1]["instance_id"] == instance.id


def test_instances_from_litestar_persistence_load_as_workflow_instance_data(run: Any) -> None:
    started = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    context = WorkflowContext(workflow_id="w", instance_id="i-1", data={"n": 1}, metadata={},
                              current_step="approve", step_history=[], started_at=started)
    saved = WorkflowInstanceData(
        id="i-1", workflow_name="approval", workflow_version="1.0.0",
        status=WorkflowStatus.COMPLETED, context=context, current_step=None, error=None,
        started_at=started, completed_at=started)
    assert isinstance(saved, WorkflowInstance)
    assert saved.started_at == started.timestamp()  # shardflow's epoch seconds
    assert saved.completed_at == started
    assert saved.is_finished and saved.context.get("n") == 1
    recorder = Recorder()
    recorder.stored["i-1"] = saved
    registry = WorkflowRegistry()
    registry.register_definition(_approval())

    async def main() -> None:
        engine = LocalExecutionEngine(registry, recorder)
        assert await engine.get_instance("i-1") is saved
        assert recorder.loads == 1
        with pytest.raises(InstanceNotFoundError, match="'i-2' not found"):
            await engine.get_instance("i-2")

    run(main())
