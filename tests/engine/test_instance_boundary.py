"""run_instance is the one error boundary of an instance: whatever fails after the steps ran
(merging the final context, parking, storing the waiting instance) fails that instance, never
leaves it ``running``, and the engine goes on serving other instances."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from engine.helpers import engine_for, single, writer
from shardflow import BaseHumanStep, WorkflowStatus
from shardflow.engine.interpreter import Interpreter
from shardflow.engine.runner import InstanceRunner
from shardflow.store.tasks import SQLiteTaskStore


class Approve(BaseHumanStep):
    name = "approve"
    title = "Approve"


class Broken(RuntimeError):
    pass


def _break_final_context(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> list[str]:
    """Make the next final_context raise ``exc`` (once); the ids of the instances it hit."""
    real = Interpreter.final_context
    hit: list[str] = []

    def final_context(self: Interpreter, fallback: Any) -> Any:
        if not hit:
            hit.append(self.instance_id)
            raise exc
        return real(self, fallback)

    monkeypatch.setattr(Interpreter, "final_context", final_context)
    return hit


def test_a_final_context_that_raises_fails_the_instance_and_the_engine_goes_on(
        run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = engine_for(single(writer("a", x=1)))
    _break_final_context(monkeypatch, Broken("merge exploded"))

    async def main() -> tuple[Any, Any]:
        return await engine.start_workflow("single"), await engine.start_workflow("single")

    failed, after = run(main())
    assert failed.status is WorkflowStatus.FAILED
    assert failed.error is not None
    assert (failed.error.step, failed.error.type) == ("<end>", "Broken")
    assert failed.context.get("x") == 1  # the context its step wrote to
    assert after.status is WorkflowStatus.COMPLETED and after.context.get("x") == 1
    assert engine.list_instances(WorkflowStatus.RUNNING) == []


class FailingStore(SQLiteTaskStore):
    """A task store whose first save of waiting instances fails (a full disk)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.failed = False

    def save_waiting(self, instances: Any) -> None:
        if not self.failed:
            self.failed = True
            raise OSError(28, "No space left on device")
        super().save_waiting(instances)


def test_a_store_that_fails_while_parking_fails_the_instance_and_the_engine_goes_on(
        run: Any, tmp_path: Path) -> None:
    store = FailingStore(tmp_path / "tasks.db")
    engine = engine_for(single(Approve(), name="approval"), store=store)

    async def main() -> tuple[Any, Any]:
        return await engine.start_workflow("approval"), await engine.start_workflow("approval")

    failed, parked = run(main())
    assert failed.status is WorkflowStatus.FAILED
    assert failed.error is not None
    assert (failed.error.step, failed.error.type) == ("<park>", "OSError")
    assert parked.status is WorkflowStatus.WAITING
    assert [t.instance_id for t in engine.pending_tasks()] == [parked.id]
    (task,) = engine.pending_tasks()
    done = run(engine.complete_human_task(task.id, {"ok": True}))
    assert done.status is WorkflowStatus.COMPLETED


def test_keyboard_interrupt_outside_a_step_propagates_and_leaves_nothing_running(
        monkeypatch: pytest.MonkeyPatch) -> None:
    engine = engine_for(single(writer("a", x=1)))
    _break_final_context(monkeypatch, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        asyncio.run(engine.start_workflow("single"))
    (instance,) = engine.list_instances()
    assert instance.status is WorkflowStatus.CANCELLED
    after = asyncio.run(engine.start_workflow("single"))
    assert after.status is WorkflowStatus.COMPLETED


def test_the_lean_runner_ends_the_same_way(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = InstanceRunner(single(writer("a", x=1)))
    _break_final_context(monkeypatch, Broken("merge exploded"))
    failed = asyncio.run(runner.run("1", {"id": 1}))
    assert failed.status is WorkflowStatus.FAILED and failed.error is not None
    assert (failed.error.step, failed.error.type) == ("<end>", "Broken")
    assert failed.context == {"id": 1, "x": 1}
    assert asyncio.run(runner.run("2", {"id": 2})).status is WorkflowStatus.COMPLETED
