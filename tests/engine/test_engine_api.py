"""The engine's API: statuses, cancellation, the registry's versions, diagrams, and the bounded
memory of a long-running engine."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from enum import StrEnum
from typing import Any

import pytest

from engine.guide.approvals import parallel_approvals
from engine.guide.basic import notification_workflow
from engine.guide.complete import workflow as order_workflow
from engine.helpers import engine_for, single, step, within, writer
from shardflow import (
    Edge,
    InstanceNotFoundError,
    ParallelGroup,
    RaceGroup,
    StepRecord,
    WorkflowContext,
    WorkflowDefinition,
    WorkflowNotFoundError,
    WorkflowRegistry,
    WorkflowStatus,
)
from shardflow.examples import notify


def test_statuses_are_lowercase_strings() -> None:
    assert issubclass(WorkflowStatus, StrEnum)
    assert [s.value for s in WorkflowStatus] == ["pending", "running", "paused", "waiting",
                                                 "completed", "failed", "canceled"]
    assert WorkflowStatus("waiting") is WorkflowStatus.WAITING
    assert str(WorkflowStatus.COMPLETED) == "completed"
    assert f"{WorkflowStatus.FAILED}" == "failed"


def test_an_instance_records_id_status_context_and_history(run: Any) -> None:
    async def main() -> Any:
        engine = engine_for(notification_workflow)
        instance = await within(engine.start_workflow("parallel_notify", {"id": "n1"}))
        assert engine.get_instance(instance.id) is instance
        return instance

    instance = run(main())
    assert instance.status == "completed"
    assert instance.error is None
    assert (instance.workflow_name, instance.workflow_version) == ("parallel_notify", "1.0.0")
    assert len(instance.id) >= 16
    assert {r.node for r in instance.history} == {"process", "send_email", "send_slack", "send_sms", "complete"}
    for record in instance.history:
        assert (record.status, record.attempts) == ("completed", 1)
        assert record.started_at <= record.ended_at
    assert instance.ended_at is not None and instance.started_at <= instance.ended_at


def test_every_instance_gets_its_own_id(run: Any) -> None:
    async def main() -> set[str]:
        engine = engine_for(notification_workflow)
        instances = await within(asyncio.gather(*(engine.start_workflow("parallel_notify") for _ in range(50))))
        return {i.id for i in instances}

    assert len(run(main())) == 50


def test_cancelling_a_running_instance(run: Any) -> None:
    async def main() -> tuple[Any, Any, list[str]]:
        seen: list[str] = []
        started = asyncio.Event()
        holder: dict[str, str] = {}

        async def wait_forever(context: WorkflowContext) -> None:
            holder["id"] = context.instance_id
            started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                seen.append("CancelledError")
                raise
            finally:
                seen.append("finally")

        engine = engine_for(single(step("wait", wait_forever)))
        running = asyncio.create_task(engine.start_workflow("single"))
        await within(started.wait())
        assert engine.get_instance(holder["id"]).status == WorkflowStatus.RUNNING
        cancelled = await within(engine.cancel_workflow(holder["id"]))
        assert seen == ["CancelledError", "finally"]  # already, when cancel_workflow returns
        returned = await within(running)
        return cancelled, returned, seen

    cancelled, returned, _ = run(main())
    assert cancelled is returned
    assert cancelled.status == WorkflowStatus.CANCELLED
    assert [r.status for r in cancelled.history] == ["canceled"]


def test_cancelling_a_finished_instance_changes_nothing(run: Any) -> None:
    async def main() -> Any:
        engine = engine_for(notification_workflow)
        instance = await within(engine.start_workflow("parallel_notify"))
        return await within(engine.cancel_workflow(instance.id))

    assert run(main()).status == WorkflowStatus.COMPLETED


def test_cancelling_the_caller_of_start_workflow_cancels_the_instance(run: Any) -> None:
    async def main() -> tuple[Any, list[str]]:
        seen: list[str] = []
        started = asyncio.Event()

        async def wait_forever(context: WorkflowContext) -> None:
            started.set()
            try:
                await asyncio.Event().wait()
            finally:
                seen.append("finally")

        engine = engine_for(single(step("wait", wait_forever)))
        running = asyncio.create_task(engine.start_workflow("single"))
        await within(started.wait())
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        (instance,) = engine.list_instances()
        return instance, seen

    instance, seen = run(main())
    assert seen == ["finally"]
    assert instance.status == WorkflowStatus.CANCELLED


def test_unknown_instance(run: Any) -> None:
    async def main() -> None:
        engine = engine_for(notification_workflow)
        with pytest.raises(InstanceNotFoundError) as caught:
            engine.get_instance("nope")
        assert caught.value.instance_id == "nope"
        assert "nope" in str(caught.value)
        with pytest.raises(InstanceNotFoundError):
            await engine.cancel_workflow("nope")

    run(main())


# -- registry ---------------------------------------------------------------------------------------
def versioned(version: str) -> WorkflowDefinition:
    return single(writer("mark", version=version), name="versioned", version=version)


def test_registry_orders_versions_semantically(run: Any) -> None:
    registry = WorkflowRegistry()
    for version in ("9.0.0", "10.0.0", "2.11.0", "2.9.0"):
        registry.register_definition(versioned(version))
    assert registry.get_definition("versioned").version == "10.0.0"
    assert registry.get_definition("versioned", "2.9.0").version == "2.9.0"
    assert registry.versions("versioned") == ["2.9.0", "2.11.0", "9.0.0", "10.0.0"]

    async def main() -> tuple[Any, Any]:
        from shardflow import LocalExecutionEngine

        engine = LocalExecutionEngine(registry)
        return (await within(engine.start_workflow("versioned")),
                await within(engine.start_workflow("versioned", version="9.0.0")))

    latest, pinned = run(main())
    assert (latest.workflow_version, latest.context.get("version")) == ("10.0.0", "10.0.0")
    assert (pinned.workflow_version, pinned.context.get("version")) == ("9.0.0", "9.0.0")


def test_registering_a_lower_version_later_keeps_the_highest_as_latest() -> None:
    registry = WorkflowRegistry()
    registry.register_definition(versioned("10.0.0"))
    registry.register_definition(versioned("9.0.0"))
    assert registry.get_definition("versioned").version == "10.0.0"


def test_unknown_workflow_name_or_version(run: Any) -> None:
    registry = WorkflowRegistry()
    registry.register_definition(versioned("1.0.0"))
    with pytest.raises(WorkflowNotFoundError) as by_name:
        registry.get_definition("missing")
    assert (by_name.value.name, by_name.value.version) == ("missing", None)
    assert "'missing'" in str(by_name.value)
    with pytest.raises(WorkflowNotFoundError) as by_version:
        registry.get_definition("versioned", "2.0.0")
    assert (by_version.value.name, by_version.value.version) == ("versioned", "2.0.0")
    assert "'2.0.0'" in str(by_version.value)

    async def main() -> None:
        from shardflow import LocalExecutionEngine

        engine = LocalExecutionEngine(registry)
        with pytest.raises(WorkflowNotFoundError):
            await engine.start_workflow("missing")
        with pytest.raises(WorkflowNotFoundError):
            await engine.start_workflow("versioned", version="3.0.0")
        assert engine.list_instances() == []

    run(main())


# -- diagrams ---------------------------------------------------------------------------------------
def test_to_mermaid_shows_groups_with_their_branches() -> None:
    text = order_workflow.to_mermaid()
    assert text.startswith("flowchart TD\n")
    assert 'subgraph notify["notify (parallel)"]' in text
    for branch in ("send_email", "send_slack", "send_webhook"):
        assert f'notify__{branch}["{branch}"]' in text
        assert f"notify__{branch} --> notify__log_notifications" in text
    assert "log_notifications (callback)" in text
    assert "process_order --> notify" in text


def test_to_mermaid_shows_races_human_steps_and_conditions() -> None:
    def approved(ctx: WorkflowContext) -> bool:
        return bool(ctx.get("ok"))

    race = RaceGroup(writer("fast", a=1), writer("slow", b=1))
    workflow = WorkflowDefinition(
        name="drawn",
        steps={"fetch": race, "approve": ParallelGroup(*parallel_approvals.branches[:1]),
               "done": writer("done")},
        edges=[Edge("fetch", "approve"), Edge("approve", "done", condition=approved)],
        initial_step="fetch",
        terminal_steps={"done"},
    )
    text = workflow.to_mermaid()
    assert 'subgraph fetch["fetch (race)"]' in text
    assert 'fetch__fast["fast"]' in text and 'fetch__slow["slow"]' in text
    assert "approve -->|approved| done" in text


# -- memory -----------------------------------------------------------------------------------------
def test_keep_finished_bounds_the_instances_kept(run: Any) -> None:
    async def main() -> None:
        engine = engine_for(notification_workflow, keep_finished=5)
        waiting_engine = engine_for(single(parallel_approvals, name="approvals"), keep_finished=2)
        waiting = await within(waiting_engine.start_workflow("approvals"))
        ids = [(await within(engine.start_workflow("parallel_notify"))).id for _ in range(8)]
        for instance_id in ids[:3]:
            with pytest.raises(InstanceNotFoundError):
                engine.get_instance(instance_id)
        assert [engine.get_instance(i).id for i in ids[3:]] == ids[3:]
        assert len(engine.list_instances()) == 5
        for _ in range(5):  # finished instances never push out a waiting one
            await within(waiting_engine.start_workflow("approvals"))
        assert waiting_engine.get_instance(waiting.id) is waiting
        assert len(waiting_engine.pending_tasks()) == 18

    run(main())


def test_keep_finished_zero_keeps_none(run: Any) -> None:
    async def main() -> None:
        engine = engine_for(notification_workflow, keep_finished=0)
        instance = await within(engine.start_workflow("parallel_notify"))
        assert instance.status == WorkflowStatus.COMPLETED
        with pytest.raises(InstanceNotFoundError):
            engine.get_instance(instance.id)
        assert engine.list_instances() == []

    run(main())


def test_a_kept_finished_instance_is_cheap_for_the_collector(run: Any) -> None:
    """Every full garbage collection walks every object the window of finished instances
    holds: 1,000 instances (the default window) of ~12 tracked objects each made a long-running
    engine's collections the largest cost it added (docs/PERFORMANCE.md). What a kept instance
    may hold: itself, its context, the context's data dict and the containers the workflow
    wrote, its write log and its history list; not its step records (plain tuples until read),
    nor the contexts it was forked from."""
    kept = 200

    async def main() -> tuple[int, Any]:
        engine = engine_for(notify.workflow, keep_finished=kept)
        await engine.start_workflow("parallel_notify", {"id": -1})  # compiles the workflow
        gc.collect()
        before = len(gc.get_objects())
        last = None
        for n in range(kept):  # the window then holds these, not the first
            last = await engine.start_workflow("parallel_notify", {"id": n})
        gc.collect()
        return len(gc.get_objects()) - before, last

    tracked, last = run(main())
    assert last.context.data["channels"] == ["email", "slack", "sms"]  # one container written
    assert tracked / kept <= 6, f"{tracked / kept:.1f} tracked objects per kept instance"
    # Reading the history still gives records (and only then builds them).
    assert [r.node for r in last.history] == ["process", "send_email", "send_slack",
                                              "send_sms", "complete"]
    assert all(type(r) is StepRecord and r.status == "completed" for r in last.history)


def test_memory_does_not_grow_per_instance(run: Any) -> None:
    """With the window of finished instances full, 4,000 more instances (fork and join by edges,
    a chord, a race, a failing step, human tasks) must not grow the heap: a leak of 50 bytes per
    instance would show as 200 KB (the anchor we replace leaks ~4.5 KB per instance).

    Tracing starts after an untraced warm-up (tracemalloc slows allocation ~5x); the first
    traced batch replaces every instance in the window, so both measurements count a window of
    traced instances."""
    workflows = mixed_workflows()
    approvals = single(ParallelGroup(*parallel_approvals.branches[:2]), name="approve")

    async def batch(engine: Any, count: int) -> None:
        for start in range(0, count, 100):
            instances = await asyncio.gather(*(
                engine.start_workflow(workflows[n % len(workflows)].name, {"n": n})
                for n in range(start, start + 95)))
            assert all(i.status in ("completed", "failed") for i in instances)
            for _ in range(5):
                waiting = await engine.start_workflow("approve")
                for task in engine.pending_tasks(waiting.id):
                    await engine.complete_human_task(task.id, {"approved": True})
                assert waiting.status == WorkflowStatus.COMPLETED

    async def main() -> int:
        engine = engine_for(*workflows, approvals, keep_finished=200)
        await batch(engine, 1000)
        tracemalloc.start()
        try:
            await batch(engine, 500)
            gc.collect()
            before = tracemalloc.get_traced_memory()[0]
            await batch(engine, 4000)
            gc.collect()
            return tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()

    growth = run(main())
    assert growth < 200_000, f"the heap grew by {growth} bytes over 4,000 instances"


def mixed_workflows() -> list[WorkflowDefinition]:
    """Workflows whose steps keep nothing outside the engine: what grows, the engine keeps."""

    async def fails(context: WorkflowContext) -> None:
        raise ValueError("always")

    notify = WorkflowDefinition(
        name="notify",
        steps={n: writer(n, **{f"{n}_done": True}) for n in ("process", "email", "slack", "sms", "complete")},
        edges=[Edge("process", "email"), Edge("process", "slack"), Edge("process", "sms"),
               Edge("email", "complete"), Edge("slack", "complete"), Edge("sms", "complete")],
        initial_step="process",
        terminal_steps={"complete"},
    )
    chord = ParallelGroup(writer("send_email", email_sent=True), writer("send_slack", slack_sent=True),
                          writer("send_webhook", webhook_sent=True), callback=writer("log", logged=True))
    orders = WorkflowDefinition(name="orders", steps={"process_order": writer("process_order"), "notify": chord},
                                edges=[Edge("process_order", "notify")], initial_step="process_order",
                                terminal_steps={"notify"})
    race = single(RaceGroup(writer("fast", fast=True), writer("slow", slow=True)), name="race")
    return [notify, orders, race, single(step("fails", fails), name="fails")]
