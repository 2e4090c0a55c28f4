"""What completing a human task leaves on the instance, as litestar-workflows code reads it:
a ``succeeded`` step record holding the form data (once), and the completing user in
``context.user_id``; and the failure and cancellation texts it reads."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

from engine.helpers import engine_for, step, within, writer
from shardflow import (
    BaseHumanStep,
    BaseMachineStep,
    Edge,
    ParallelGroup,
    SQLiteTaskStore,
    WorkflowContext,
    WorkflowDefinition,
    WorkflowStatus,
)


class Approve(BaseHumanStep):
    title = "Approve"


class Seen(BaseMachineStep):
    """Writes what the history and the context show after the human step."""

    async def execute(self, context: WorkflowContext) -> Any:
        context.set("seen", [[e.step_name, e.status, e.result] for e in context.step_history])
        context.set("user", context.user_id)


def _approval() -> WorkflowDefinition:
    return WorkflowDefinition(
        name="approval", steps={"prepare": writer("prepare", ready=True),
                                "approve": Approve(name="approve"), "report": Seen(name="report")},
        edges=[Edge("prepare", "approve"), Edge("approve", "report")],
        initial_step="prepare", terminal_steps={"report"})


def _records(instance: Any, node: str) -> list[tuple[str, str]]:
    return [(r.node, r.status) for r in instance.history if r.node == node]


def test_a_completed_human_step_is_recorded_once_with_its_form_data_by_task_id(run: Any) -> None:
    async def main() -> Any:
        engine = engine_for(_approval())
        waiting = await within(engine.start_workflow("approval", user_id="starter"))
        (task,) = engine.pending_tasks(waiting.id)
        return await within(engine.complete_human_task(task.id, {"ok": True}, user_id="alice"))

    instance = run(main())
    assert instance.status is WorkflowStatus.COMPLETED
    assert instance.context.get("seen") == [["prepare", "succeeded", None],
                                            ["approve", "succeeded", {"ok": True}]]
    assert _records(instance, "approve") == [("approve", "completed")]
    execution = instance.context.get_last_execution("approve")
    assert execution.output_data == {"ok": True}  # as litestar-workflows records it
    assert execution.completed_at is not None and execution.error is None
    assert instance.context.user_id == "alice" and instance.context.get("user") == "alice"


def test_completing_by_instance_and_step_name_records_it_and_sets_the_user(run: Any) -> None:
    async def main() -> Any:
        engine = engine_for(_approval())
        waiting = await within(engine.start_workflow("approval"))
        return await within(engine.complete_human_task(waiting.id, "approve", "bob", {"n": 1}))

    instance = run(main())
    assert [e.step_name for e in instance.context.step_history] == ["prepare", "approve", "report"]
    assert instance.context.get_last_execution("approve").result == {"n": 1}
    assert instance.context.get("user") == "bob"


def test_a_completion_without_a_user_keeps_the_user_the_instance_started_with(run: Any) -> None:
    async def main() -> Any:
        engine = engine_for(_approval())
        waiting = await within(engine.start_workflow("approval", user_id="starter"))
        (task,) = engine.pending_tasks(waiting.id)
        return await within(engine.complete_human_task(task.id, {}))

    assert run(main()).context.get("user") == "starter"


def test_human_branches_of_a_parallel_group_are_recorded_each_once(run: Any) -> None:
    class Legal(BaseHumanStep):
        name = "legal"
        title = "Legal"

    class Finance(BaseHumanStep):
        name = "finance"
        title = "Finance"

    definition = WorkflowDefinition(
        name="panel", steps={"both": ParallelGroup(Legal(), Finance()),
                             "report": Seen(name="report")},
        edges=[Edge("both", "report")], initial_step="both", terminal_steps={"report"})

    async def main() -> Any:
        engine = engine_for(definition)
        waiting = await within(engine.start_workflow("panel"))
        tasks = {t.step: t for t in engine.pending_tasks(waiting.id)}
        await within(engine.complete_human_task(tasks["finance"].id, {"f": 2}, user_id="fay"))
        return await within(engine.complete_human_task(tasks["legal"].id, {"l": 1},
                                                       user_id="lee"))

    instance = run(main())
    assert instance.status is WorkflowStatus.COMPLETED
    assert sorted(map(tuple, instance.context.get("seen"))) == [
        ("both/finance", "succeeded", {"f": 2}), ("both/legal", "succeeded", {"l": 1})]
    assert instance.context.get("user") == "lee"  # the last to complete


def test_a_task_completed_after_a_restore_from_the_task_store_is_recorded(
        run: Any, tmp_path: Path) -> None:
    async def park() -> str:
        first = engine_for(_approval(), store=SQLiteTaskStore(tmp_path / "t.db"))
        return (await within(first.start_workflow("approval"))).id

    async def main() -> Any:
        instance_id = await park()
        gc.collect()  # the first engine is gone, as after a restart
        second = engine_for(_approval(), store=SQLiteTaskStore(tmp_path / "t.db"))
        return await within(second.complete_human_task(instance_id, "approve", "cy", {"x": 1}))

    instance = run(main())
    assert instance.status is WorkflowStatus.COMPLETED
    # the history of the steps since the restore, as after a batch resume
    assert instance.context.get("seen") == [["approve", "succeeded", {"x": 1}]]
    assert _records(instance, "approve") == [("approve", "completed")]
    assert instance.context.get("user") == "cy"


def test_a_failed_step_records_its_message_with_its_type_beside(run: Any) -> None:
    async def boom(context: WorkflowContext) -> None:
        raise RuntimeError("card declined")

    definition = WorkflowDefinition(
        name="boom", steps={"pay": step("pay", boom)}, edges=[], initial_step="pay",
        terminal_steps={"pay"})

    async def main() -> Any:
        return await within(engine_for(definition).start_workflow("boom"))

    instance = run(main())
    (record,) = instance.history
    assert record.error == "card declined" and record.error.type == "RuntimeError"
    (execution,) = instance.context.step_history
    assert execution.error == "card declined" == instance.error


def test_a_cancelled_instance_says_why_in_its_error(run: Any) -> None:
    async def main() -> tuple[Any, Any]:
        engine = engine_for(_approval())
        one = await within(engine.start_workflow("approval"))
        two = await within(engine.start_workflow("approval"))
        await engine.cancel_workflow(one.id, "customer left")
        await engine.cancel_workflow(two.id)
        return one, two

    one, two = run(main())
    assert one.status is WorkflowStatus.CANCELED and one.error == "Canceled: customer left"
    assert (one.error.step, one.error.type) == ("approve", "CancelledError")
    assert two.error == "Canceled"
