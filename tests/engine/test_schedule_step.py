"""``engine.schedule_step(instance_id, step_name, delay)``: run one step of an instance after a
delay on the engine's clock, and the workflow on from it; never beside a run in progress."""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta
from typing import Any

import pytest

from engine.helpers import Tracker, engine_for, step, within
from shardflow import (
    BaseHumanStep,
    Edge,
    FakeClock,
    SQLiteTaskStore,
    WorkflowAlreadyCompletedError,
    WorkflowContext,
    WorkflowDefinition,
    WorkflowInstanceData,
    WorkflowStatus,
)
from shardflow.errors import InstanceNotFoundError, InstanceWaitingError, StepNotFoundError


def _appender(name: str, fail_first: int = 0) -> Any:
    """A step that appends its name to ``seen``, failing its first ``fail_first`` runs."""
    runs = [0]

    async def body(context: WorkflowContext) -> None:
        runs[0] += 1
        if runs[0] <= fail_first:
            raise RuntimeError(f"{name} is down")
        context.set("seen", [*context.get("seen", []), name])

    return step(name, body)


def _chain(*names: str, fail_first: dict[str, int] | None = None) -> WorkflowDefinition:
    fails = fail_first or {}
    return WorkflowDefinition(
        name="chain", steps={n: _appender(n, fails.get(n, 0)) for n in names},
        edges=[Edge(a, b) for a, b in itertools.pairwise(names)],
        initial_step=names[0])


class Recorder:
    def __init__(self) -> None:
        self.events: list[str] = []
        self.saved: list[WorkflowStatus] = []

    async def emit(self, event_type: str, **fields: Any) -> None:
        self.events.append(event_type)

    async def save_instance(self, instance: Any) -> None:
        self.saved.append(instance.status)

    async def load_instance(self, instance_id: Any) -> Any:
        return None


def test_a_failed_instance_reruns_from_the_scheduled_step_when_the_delay_is_up(run: Any) -> None:
    clock = FakeClock()
    recorder = Recorder()
    engine = engine_for(_chain("a", "b", "c", fail_first={"b": 1}), clock=clock,
                        persistence=recorder, event_bus=recorder)

    async def main() -> Any:
        instance = await within(engine.start_workflow("chain"))
        assert instance.status is WorkflowStatus.FAILED and instance.current_step == "b"
        handle = await engine.schedule_step(instance.id, "b", delay=timedelta(seconds=30))
        await within(clock.wait_for_timers(1))
        clock.advance(29)
        await asyncio.sleep(0)
        assert instance.status is WorkflowStatus.FAILED  # not yet due
        clock.advance(1)
        assert await within(handle) is instance
        return instance

    instance = run(main())
    assert instance.status is WorkflowStatus.COMPLETED
    assert (instance.error, instance.current_step) == (None, None)
    assert instance.context.get("seen") == ["a", "b", "c"]  # a's write kept, a not rerun
    assert [(r.node, r.status) for r in instance.history] == [
        ("a", "completed"), ("b", "failed"), ("b", "completed"), ("c", "completed")]
    assert recorder.saved == [WorkflowStatus.RUNNING, WorkflowStatus.FAILED,
                              WorkflowStatus.RUNNING, WorkflowStatus.COMPLETED]
    assert recorder.events.count("workflow.started") == 2
    assert recorder.events[-1] == "workflow.completed"


def test_a_join_after_the_scheduled_step_waits_only_for_edges_that_can_still_arrive(
        run: Any) -> None:
    definition = WorkflowDefinition(
        name="diamond", steps={n: _appender(n) for n in "abcd"},
        edges=[Edge("a", "b"), Edge("a", "c"), Edge("b", "d"), Edge("c", "d")],
        initial_step="a", merge_policy="last_wins")
    engine = engine_for(definition)

    async def main() -> Any:
        instance = await within(engine.start_workflow("diamond"))
        handle = await engine.schedule_step(instance.id, "c")
        return await within(handle)

    instance = run(main())
    assert instance.status is WorkflowStatus.COMPLETED
    assert [r.node for r in instance.history].count("d") == 2
    assert [r.node for r in instance.history][-2:] == ["c", "d"]  # b did not run again


def test_a_step_scheduled_on_a_running_instance_runs_after_that_run_never_beside_it(
        run: Any) -> None:
    tracker = Tracker()

    async def slow(context: WorkflowContext) -> None:
        await tracker.hold("slow")

    async def fast(context: WorkflowContext) -> None:
        await tracker.hold("fast")

    definition = WorkflowDefinition(
        name="busy", steps={"slow": step("slow", slow), "fast": step("fast", fast)},
        edges=[Edge("slow", "fast")], initial_step="slow")
    engine = engine_for(definition)

    async def main() -> Any:
        starting = asyncio.ensure_future(engine.start_workflow("busy"))
        await within(tracker.wait_inside(1))
        [instance] = engine.get_running_instances()
        handle = await engine.schedule_step(instance.id, "fast")  # due at once, yet running
        for _ in range(5):
            await asyncio.sleep(0)
        assert tracker.entered == ["slow"] and not handle.done()
        tracker.release()
        await within(starting)
        assert await within(handle) is instance
        return instance

    instance = run(main())
    assert tracker.peak == 1  # never two runs of the instance at once
    assert tracker.entered == ["slow", "fast", "fast"]
    assert instance.status is WorkflowStatus.COMPLETED


def test_scheduling_says_what_is_wrong(run: Any) -> None:
    class Approve(BaseHumanStep):
        title = "Approve"

    waiting_definition = WorkflowDefinition(
        name="wait", steps={"approve": Approve(), "after": _appender("after")},
        edges=[Edge("approve", "after")], initial_step="approve")
    engine = engine_for(_chain("a", "b"), waiting_definition)

    async def main() -> None:
        with pytest.raises(InstanceNotFoundError, match="'nope' not found"):
            await engine.schedule_step("nope", "a")
        done = await within(engine.start_workflow("chain"))
        with pytest.raises(StepNotFoundError) as unknown:
            await engine.schedule_step(done.id, "z")
        assert isinstance(unknown.value, KeyError)
        assert str(unknown.value) == "step 'z' not found in workflow 'chain' (its steps: 'a', 'b')"
        with pytest.raises(ValueError, match="delay"):
            await engine.schedule_step(done.id, "a", delay=-1)
        waiting = await within(engine.start_workflow("wait"))
        with pytest.raises(InstanceWaitingError, match="waiting at step 'approve'") as busy:
            await engine.schedule_step(waiting.id, "after")
        assert isinstance(busy.value, ValueError)
        await engine.cancel_workflow(waiting.id, "no")
        with pytest.raises(WorkflowAlreadyCompletedError, match="already canceled"):
            await engine.schedule_step(waiting.id, "after")

    run(main())


def test_cancelling_the_handle_before_it_is_due_unschedules_the_step(run: Any) -> None:
    clock = FakeClock()
    engine = engine_for(_chain("a", "b"), clock=clock)

    async def main() -> Any:
        instance = await within(engine.start_workflow("chain"))
        handle = await engine.schedule_step(instance.id, "a", delay=60.0)
        await within(clock.wait_for_timers(1))
        handle.cancel()
        clock.advance(60)
        for _ in range(5):
            await asyncio.sleep(0)
        assert handle.cancelled()
        return instance

    instance = run(main())
    assert [r.node for r in instance.history] == ["a", "b"]


def test_the_rules_are_checked_again_when_the_step_is_due(run: Any) -> None:
    class Approve(BaseHumanStep):
        title = "Approve"

    clock = FakeClock()
    definition = WorkflowDefinition(
        name="wait", steps={"start": _appender("start"), "approve": Approve()},
        edges=[Edge("start", "approve", condition=lambda ctx: ctx.get("ask", False))],
        initial_step="start")
    engine = engine_for(definition, clock=clock)

    async def main() -> Any:
        instance = await within(engine.start_workflow("wait"))  # approval not asked
        assert instance.status is WorkflowStatus.COMPLETED
        later = await engine.schedule_step(instance.id, "start", delay=5.0)
        await within(await engine.schedule_step(instance.id, "approve"))  # parks
        assert instance.status is WorkflowStatus.WAITING
        await within(clock.wait_for_timers(1))
        clock.advance(5)
        with pytest.raises(InstanceWaitingError):
            await within(later)
        return instance

    instance = run(main())
    assert instance.status is WorkflowStatus.WAITING
    assert engine.pending_tasks(instance.id)[0].node == "approve"


def test_an_instance_loaded_from_litestar_persistence_continues_from_a_step(run: Any) -> None:
    """litestar-workflows' use of ``schedule_step``: resume an instance a process left
    ``running`` in its persistence."""
    left = WorkflowInstanceData(
        id="i-1", workflow_name="chain", workflow_version="1.0.0",
        status=WorkflowStatus.RUNNING, current_step="b",
        context=WorkflowContext({"seen": ["a"]}, instance_id="i-1"))

    class Persistence:
        async def save_instance(self, instance: Any) -> None:
            pass

        async def load_instance(self, instance_id: Any) -> Any:
            return left if instance_id == "i-1" else None

    engine = engine_for(_chain("a", "b", "c"), persistence=Persistence())

    async def main() -> Any:
        return await within(await engine.schedule_step("i-1", "b"))

    instance = run(main())
    assert instance is left and instance.status is WorkflowStatus.COMPLETED
    assert instance.context.get("seen") == ["a", "b", "c"]


def test_a_rerun_that_parks_is_saved_to_the_task_store_and_continues_elsewhere(
        run: Any, tmp_path: Any) -> None:
    class Approve(BaseHumanStep):
        title = "Approve"

    definition = WorkflowDefinition(
        name="retry", steps={"a": _appender("a", fail_first=1), "approve": Approve()},
        edges=[Edge("a", "approve")], initial_step="a")
    path = tmp_path / "tasks.db"

    async def main() -> Any:
        engine = engine_for(definition, store=SQLiteTaskStore(path))
        failed = await within(engine.start_workflow("retry"))
        assert failed.status is WorkflowStatus.FAILED
        parked = await within(await engine.schedule_step(failed.id, "a"))
        assert parked.status is WorkflowStatus.WAITING
        other = engine_for(definition, store=SQLiteTaskStore(path))  # another process
        [task] = other.pending_tasks(failed.id)
        return await within(other.complete_human_task(task.id, {"ok": True}))

    instance = run(main())
    assert instance.status is WorkflowStatus.COMPLETED
    assert instance.context.get("approve") == {"ok": True}
    assert instance.context.get("seen") == ["a"]
