"""Human steps: tasks, JSON Schema validation listing every violation, completing exactly once,
resuming, and where the form data lands."""

from __future__ import annotations

from typing import Any

import pytest

from engine.guide.approvals import FinanceApproval, LegalApproval, SecurityApproval, parallel_approvals
from engine.helpers import engine_for, single, step, within, writer
from shardflow import (
    BaseHumanStep,
    Edge,
    HumanTask,
    ParallelGroup,
    TaskAlreadyCompletedError,
    TaskNotFoundError,
    TaskValidationError,
    WorkflowDefinition,
    WorkflowStatus,
)


class Review(BaseHumanStep):
    name = "review"
    title = "Review the order"
    assignee = "ops"
    due_in_seconds = 3600
    form_schema = {
        "type": "object",
        "properties": {
            "approved": {"type": "boolean"},
            "score": {"type": "integer", "minimum": 1, "maximum": 5},
            "note": {"type": "string", "maxLength": 10},
        },
        "required": ["approved", "score"],
        "additionalProperties": False,
    }


def review_workflow() -> WorkflowDefinition:
    return WorkflowDefinition(
        name="review",
        steps={"prepare": writer("prepare", prepared=True), "manager_review": Review(),
               "ship": writer("ship", shipped=True)},
        edges=[Edge("prepare", "manager_review"), Edge("manager_review", "ship",
                                                       condition=lambda ctx: ctx.get("manager_review.approved"))],
        initial_step="prepare",
        terminal_steps={"ship"},
    )


def test_a_human_node_creates_a_task_and_its_form_data_lands_under_the_node_id(run: Any) -> None:
    async def main() -> tuple[Any, HumanTask]:
        engine = engine_for(review_workflow())
        instance = await within(engine.start_workflow("review", {"order": 7}))
        assert instance.status == WorkflowStatus.WAITING
        (task,) = engine.pending_tasks()
        assert engine.pending_tasks(instance.id) == [task]
        assert engine.pending_tasks("another-instance") == []
        done = await within(engine.complete_human_task(task.id, {"approved": True, "score": 4}, user_id="kim"))
        assert done is instance
        return instance, task

    instance, task = run(main())
    assert (task.instance_id, task.step, task.title, task.assignee) == (instance.id, "manager_review",
                                                                         "Review the order", "ops")
    assert task.form_schema == Review.form_schema
    assert task.due_at is not None and task.due_at == pytest.approx(task.created_at + 3600)
    assert task.completed and task.completed_by == "kim"
    assert instance.status == WorkflowStatus.COMPLETED
    assert instance.context.data == {"order": 7, "prepared": True,
                                     "manager_review": {"approved": True, "score": 4}, "shipped": True}


def test_invalid_data_lists_every_violation_and_leaves_the_task_open(run: Any) -> None:
    async def main() -> tuple[Any, TaskValidationError]:
        engine = engine_for(review_workflow())
        instance = await within(engine.start_workflow("review"))
        (task,) = engine.pending_tasks(instance.id)
        with pytest.raises(TaskValidationError) as caught:
            await engine.complete_human_task(task.id, {"score": 9, "note": "far too long a note", "extra": 1})
        assert caught.value.task_id == task.id
        assert instance.status == WorkflowStatus.WAITING
        assert engine.pending_tasks(instance.id) == [task]
        assert not task.completed
        await within(engine.complete_human_task(task.id, {"approved": False, "score": 1}))
        return instance, caught.value

    instance, error = run(main())
    violations = error.violations
    assert len(violations) == 4
    for field in ("approved", "score", "note", "extra"):
        assert any(field in v for v in violations), field
        assert field in str(error)
    assert instance.status == WorkflowStatus.COMPLETED
    assert "shipped" not in instance.context  # not approved: the edge to ship is not taken


@pytest.mark.parametrize("data", [None, ["approved"], "yes"])
def test_form_data_must_be_an_object(run: Any, data: Any) -> None:
    async def main() -> None:
        engine = engine_for(review_workflow())
        instance = await within(engine.start_workflow("review"))
        (task,) = engine.pending_tasks(instance.id)
        with pytest.raises(TaskValidationError):
            await engine.complete_human_task(task.id, data)
        assert engine.pending_tasks(instance.id) == [task]

    run(main())


def test_a_task_completes_exactly_once(run: Any) -> None:
    async def main() -> None:
        engine = engine_for(single(parallel_approvals, name="approvals"))
        instance = await within(engine.start_workflow("approvals"))
        tasks = {t.step: t for t in engine.pending_tasks(instance.id)}
        legal, finance, security = (tasks[s.name].id for s in (LegalApproval, FinanceApproval, SecurityApproval))
        await engine.complete_human_task(legal, {"approved": True})
        with pytest.raises(TaskAlreadyCompletedError) as caught:
            await engine.complete_human_task(legal, {"approved": False})
        assert caught.value.task_id == legal
        assert legal in str(caught.value)
        await engine.complete_human_task(finance, {"approved": True})
        await engine.complete_human_task(security, {"approved": True, "risk_level": "high"})
        assert instance.status == WorkflowStatus.COMPLETED
        for task_id in (legal, finance, security):  # also once the instance has finished
            with pytest.raises(TaskAlreadyCompletedError):
                await engine.complete_human_task(task_id, {"approved": False, "risk_level": "low"})
        assert instance.context.get("legal_approval") == {"approved": True}
        assert instance.context.get("all_approved") is True

    run(main())


def test_an_unknown_task_is_reported(run: Any) -> None:
    async def main() -> None:
        engine = engine_for(review_workflow())
        with pytest.raises(TaskNotFoundError) as caught:
            await engine.complete_human_task("no-such-task", {"approved": True, "score": 1})
        assert caught.value.task_id == "no-such-task"
        assert "no-such-task" in str(caught.value)
        with pytest.raises(TaskNotFoundError):
            engine.get_task("no-such-task")

    run(main())


def test_parallel_human_steps_create_all_tasks_at_once_next_to_machine_branches(run: Any) -> None:
    async def main() -> None:
        group = ParallelGroup(writer("auto_check", auto_ok=True), LegalApproval(), FinanceApproval(),
                              callback=writer("decide", decided=True))
        engine = engine_for(single(group, name="mixed"))
        instance = await within(engine.start_workflow("mixed"))
        assert instance.status == WorkflowStatus.WAITING
        tasks = engine.pending_tasks(instance.id)
        assert sorted(t.step for t in tasks) == ["finance_approval", "legal_approval"]
        assert len({t.id for t in tasks}) == 2
        for task in tasks:
            await engine.complete_human_task(task.id, {"approved": True})
        assert instance.status == WorkflowStatus.COMPLETED
        assert instance.context.get("auto_ok") is True
        assert instance.context.get("decided") is True
        assert instance.context.get("finance_approval.approved") is True

    run(main())


def test_a_waiting_instance_can_be_cancelled(run: Any) -> None:
    async def main() -> None:
        engine = engine_for(single(parallel_approvals, name="approvals"))
        instance = await within(engine.start_workflow("approvals"))
        task = engine.pending_tasks(instance.id)[0]
        cancelled = await within(engine.cancel_workflow(instance.id))
        assert cancelled is instance
        assert instance.status == WorkflowStatus.CANCELLED
        assert engine.get_instance(instance.id).status == "canceled"
        assert engine.pending_tasks(instance.id) == []
        with pytest.raises(TaskNotFoundError):
            await engine.complete_human_task(task.id, {"approved": True})

    run(main())


def test_two_waiting_instances_keep_their_tasks_apart(run: Any) -> None:
    async def main() -> None:
        engine = engine_for(review_workflow())
        first = await within(engine.start_workflow("review", {"n": 1}))
        second = await within(engine.start_workflow("review", {"n": 2}))
        assert len(engine.pending_tasks()) == 2
        (task,) = engine.pending_tasks(second.id)
        await within(engine.complete_human_task(task.id, {"approved": True, "score": 3}))
        assert (first.status, second.status) == (WorkflowStatus.WAITING, WorkflowStatus.COMPLETED)
        assert second.context.get("n") == 2
        assert [t.instance_id for t in engine.pending_tasks()] == [first.id]

    run(main())


def test_a_join_waits_for_a_human_branch_and_runs_once(run: Any) -> None:
    """start -> review (human) -> end and start -> auto -> end: auto finishes at once, end waits
    for the review, then runs once with both."""
    ran: list[str] = []

    async def main() -> Any:
        async def end(context: Any) -> None:
            ran.append("end")
            context.set("saw", {"auto": context.get("auto"), "review": context.get("review.approved")})

        workflow = WorkflowDefinition(
            name="mixed_join",
            steps={"start": writer("start"), "review": Review(), "auto": writer("auto", auto=True),
                   "end": step("end", end)},
            edges=[Edge("start", "review"), Edge("start", "auto"), Edge("review", "end"), Edge("auto", "end")],
            initial_step="start",
            terminal_steps={"end"},
        )
        engine = engine_for(workflow)
        instance = await within(engine.start_workflow("mixed_join"))
        assert instance.status == WorkflowStatus.WAITING
        assert ran == []
        (task,) = engine.pending_tasks(instance.id)
        await within(engine.complete_human_task(task.id, {"approved": True, "score": 5}))
        return instance

    instance = run(main())
    assert instance.status == WorkflowStatus.COMPLETED
    assert ran == ["end"]
    assert instance.context.get("saw") == {"auto": True, "review": True}


def test_human_steps_one_after_another(run: Any) -> None:
    class SecondReview(Review):
        name = "second"

    async def main() -> None:
        workflow = WorkflowDefinition(
            name="two_reviews",
            steps={"first": Review(), "second": SecondReview(), "done": writer("done", done=True)},
            edges=[Edge("first", "second"), Edge("second", "done")],
            initial_step="first",
            terminal_steps={"done"},
        )
        engine = engine_for(workflow)
        instance = await within(engine.start_workflow("two_reviews"))
        (first,) = engine.pending_tasks(instance.id)
        await within(engine.complete_human_task(first.id, {"approved": True, "score": 2}))
        assert instance.status == WorkflowStatus.WAITING
        (second,) = engine.pending_tasks(instance.id)
        assert second.step == "second" and second.id != first.id
        await within(engine.complete_human_task(second.id, {"approved": False, "score": 1}))
        assert instance.status == WorkflowStatus.COMPLETED
        assert instance.context.get("first.score") == 2
        assert instance.context.get("second.approved") is False
        assert instance.context.get("done") is True

    run(main())


def test_a_failure_after_the_tasks_fails_the_instance(run: Any) -> None:
    async def main() -> Any:
        async def check(context: Any) -> None:
            raise RuntimeError(f"cannot decide on {context.get('legal_approval')}")

        group = ParallelGroup(LegalApproval(), callback=step("check", check))
        engine = engine_for(single(group, name="failing_check"))
        instance = await within(engine.start_workflow("failing_check"))
        (task,) = engine.pending_tasks(instance.id)
        returned = await within(engine.complete_human_task(task.id, {"approved": True}))
        assert returned is instance
        return instance

    instance = run(main())
    assert instance.status == WorkflowStatus.FAILED
    assert (instance.error.step, instance.error.type) == ("node/check", "RuntimeError")
    assert instance.error.message == "cannot decide on {'approved': True}"


def test_a_task_shows_the_approver_the_steps_display_fields_as_they_were(run: Any) -> None:
    """In a parallel group too: a branch's task shows the group's input context; a step
    without ``display`` shows nothing extra."""

    class Approve(BaseHumanStep):
        name = "approve"
        description = "Check the order"
        display = {"Customer": "order.customer", "Total": "order.total", "Note": "order.note"}

    class Plain(BaseHumanStep):
        name = "plain"

    async def main() -> list[HumanTask]:
        engine = engine_for(single(ParallelGroup(Approve(), Plain())))
        await within(engine.start_workflow("single", {"order": {"customer": "ACME", "total": 5}}))
        return sorted(engine.pending_tasks(), key=lambda t: t.step)

    approve, plain = run(main())
    assert approve.description == "Check the order"
    assert approve.display == [
        {"label": "Customer", "path": "order.customer", "value": "ACME"},
        {"label": "Total", "path": "order.total", "value": 5},
        {"label": "Note", "path": "order.note", "value": None, "missing": True}]
    assert (plain.description, plain.display) == (None, None)
