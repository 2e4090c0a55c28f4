"""Failures: fail-fast with sibling cancellation, tolerant groups and quorums, chords, races."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from engine.helpers import engine_for, history_of, single, step, within, writer
from shardflow import (
    Edge,
    ParallelGroup,
    RaceGroup,
    WorkflowContext,
    WorkflowDefinition,
    WorkflowStatus,
)


class Sleeper:
    """A step body that starts, then waits for ever; records its cancellation and ``finally``."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = False
        self.finally_ran = False

    async def __call__(self, context: WorkflowContext) -> None:
        context.set("sleeper_partial", True)
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        finally:
            self.finally_ran = True


def failing_after(event: asyncio.Event, message: str = "boom") -> Any:
    async def body(context: WorkflowContext) -> None:
        await event.wait()
        raise ValueError(message)

    return body


# -- fail-fast ------------------------------------------------------------------------------------
def test_a_failing_branch_cancels_its_running_sibling_and_fails_the_instance(run: Any) -> None:
    ran_after: list[str] = []

    async def main() -> tuple[Any, bool, bool]:
        sleeper = Sleeper()

        async def after(context: WorkflowContext) -> None:
            ran_after.append("join")

        workflow = WorkflowDefinition(
            name="fail_fast",
            steps={"start": writer("start"), "bad": step("bad", failing_after(sleeper.started)),
                   "slow": step("slow", sleeper), "join": step("join", after)},
            edges=[Edge("start", "bad"), Edge("start", "slow"), Edge("bad", "join"), Edge("slow", "join")],
            initial_step="start",
            terminal_steps={"join"},
        )
        instance = await within(engine_for(workflow).start_workflow("fail_fast"))
        return instance, sleeper.cancelled, sleeper.finally_ran

    instance, cancelled, finally_ran = run(main())
    assert instance.status == WorkflowStatus.FAILED
    assert cancelled and finally_ran
    error = instance.error
    assert (error.step, error.type, error.message) == ("bad", "ValueError", "boom")
    assert "ValueError: boom" in error.traceback
    assert 'raise ValueError(message)' in error.traceback
    assert [r.status for r in history_of(instance, "slow")] == ["canceled"]
    assert [(r.status, r.error, r.error.type) for r in history_of(instance, "bad")] == [
        ("failed", "boom", "ValueError")]
    assert ran_after == []


def test_a_failing_group_branch_cancels_the_others(run: Any) -> None:
    async def main() -> tuple[Any, bool]:
        sleeper = Sleeper()
        callback_runs: list[int] = []

        async def callback(context: WorkflowContext) -> None:
            callback_runs.append(1)

        group = ParallelGroup(step("slow", sleeper), step("bad", failing_after(sleeper.started, "no")),
                              callback=step("cb", callback))
        instance = await within(engine_for(single(group, name="group_fail")).start_workflow("group_fail"))
        assert callback_runs == []
        return instance, sleeper.finally_ran

    instance, finally_ran = run(main())
    assert finally_ran
    assert instance.status == WorkflowStatus.FAILED
    assert (instance.error.step, instance.error.type, instance.error.message) == ("node/bad", "ValueError", "no")
    assert [r.status for r in history_of(instance, "node/slow")] == ["canceled"]


# -- tolerant groups, quorums, chords ------------------------------------------------------------------
def raising(message: str, kind: type[Exception] = ValueError) -> Any:
    async def body(context: WorkflowContext) -> None:
        context.set("partial_write", message)
        raise kind(message)

    return body


def test_tolerant_group_lets_the_callback_see_each_failed_branch(run: Any) -> None:
    async def main() -> tuple[Any, list[Any]]:
        seen: list[Any] = []

        async def callback(context: WorkflowContext) -> None:
            seen.append({"errors": context.get("fetch.errors"), "ok": context.get("ok")})

        group = ParallelGroup(writer("good", ok=True), step("bad", raising("nope")),
                              step("worse", raising("down", ConnectionError)),
                              callback=step("summary", callback), tolerate_failures=True)
        workflow = WorkflowDefinition(name="tolerant", steps={"fetch": group}, edges=[],
                                      initial_step="fetch", terminal_steps={"fetch"})
        return await within(engine_for(workflow).start_workflow("tolerant")), seen

    instance, seen = run(main())
    assert instance.status == WorkflowStatus.COMPLETED
    errors = {"bad": {"type": "ValueError", "message": "nope"},
              "worse": {"type": "ConnectionError", "message": "down"}}
    assert seen == [{"errors": errors, "ok": True}]
    assert instance.context.get("fetch.errors.bad.type") == "ValueError"
    assert "partial_write" not in instance.context  # a failed branch's writes are dropped


@pytest.mark.parametrize(("failures", "status"), [(1, WorkflowStatus.COMPLETED), (2, WorkflowStatus.FAILED)])
def test_min_success_quorum(run: Any, failures: int, status: WorkflowStatus) -> None:
    async def main() -> tuple[Any, int]:
        runs: list[int] = []

        async def callback(context: WorkflowContext) -> None:
            runs.append(1)

        branches = [step(f"b{i}", raising(f"e{i}")) if i < failures else writer(f"b{i}", **{f"b{i}": i})
                    for i in range(3)]
        group = ParallelGroup(*branches, min_success=2, callback=step("cb", callback))
        instance = await within(engine_for(single(group, name="quorum")).start_workflow("quorum"))
        return instance, len(runs)

    instance, callback_runs = run(main())
    assert instance.status == status
    if status == WorkflowStatus.COMPLETED:
        assert callback_runs == 1
        assert instance.context.get("node.errors") == {"b0": {"type": "ValueError", "message": "e0"}}
    else:
        assert callback_runs == 0
        assert instance.error.type == "GroupFailedError"
        assert instance.error.step == "node"
        assert "1 branch(es) succeeded, 2 required" in instance.error.message


def test_chord_callback_runs_exactly_once_after_every_branch(run: Any) -> None:
    async def main() -> tuple[Any, list[list[str]]]:
        finished: list[str] = []
        callback_saw: list[list[str]] = []
        gates = [asyncio.Event() for _ in range(4)]

        def branch(i: int) -> Any:
            async def body(context: WorkflowContext) -> None:
                # Branch i waits for branch i+1: they finish last-declared first.
                if i < 3:
                    await gates[i + 1].wait()
                finished.append(f"b{i}")
                context.set(f"b{i}", i)
                gates[i].set()
            return body

        async def callback(context: WorkflowContext) -> None:
            callback_saw.append(list(finished))

        group = ParallelGroup(*(step(f"b{i}", branch(i)) for i in range(4)), callback=step("cb", callback))
        instance = await within(engine_for(single(group, name="chord")).start_workflow("chord"))
        return instance, callback_saw

    instance, callback_saw = run(main())
    assert callback_saw == [["b3", "b2", "b1", "b0"]]
    assert [instance.context.get(f"b{i}") for i in range(4)] == [0, 1, 2, 3]


# -- races ------------------------------------------------------------------------------------------------
def test_race_cancels_the_loser_and_keeps_only_the_winners_writes(run: Any) -> None:
    async def main() -> tuple[Any, Sleeper]:
        sleeper = Sleeper()

        async def winner(context: WorkflowContext) -> Any:
            await sleeper.started.wait()
            context.set("answer", 42)
            return "won"

        race = RaceGroup(step("slow", sleeper), step("quick", winner, store_result=True))
        workflow = WorkflowDefinition(
            name="race", steps={"race": race, "after": writer("after", after=True)},
            edges=[Edge("race", "after")], initial_step="race", terminal_steps={"after"})
        return await within(engine_for(workflow).start_workflow("race")), sleeper

    instance, sleeper = run(main())
    assert instance.status == WorkflowStatus.COMPLETED
    assert sleeper.cancelled and sleeper.finally_ran
    assert instance.context.data == {"answer": 42, "quick": "won", "after": True}
    assert [r.status for r in history_of(instance, "race/slow")] == ["canceled"]


def test_race_winner_is_the_first_to_succeed_not_the_first_to_finish(run: Any) -> None:
    async def main() -> Any:
        failed = asyncio.Event()

        async def fails_first(context: WorkflowContext) -> None:
            failed.set()
            raise RuntimeError("first out, but failed")

        async def succeeds_later(context: WorkflowContext) -> Any:
            await failed.wait()
            await asyncio.sleep(0)
            return "ok"

        race = RaceGroup(step("flaky", fails_first),
                         step("steady", succeeds_later, store_result=True))
        return await within(engine_for(single(race, name="race")).start_workflow("race"))

    instance = run(main())
    assert instance.status == WorkflowStatus.COMPLETED
    assert instance.context.data == {"steady": "ok"}


def test_a_race_where_every_branch_fails_fails_with_race_lost_error(run: Any) -> None:
    async def main() -> Any:
        race = RaceGroup(step("one", raising("first down")), step("two", raising("second down", KeyError)))
        return await within(engine_for(single(race, name="race")).start_workflow("race"))

    instance = run(main())
    assert instance.status == WorkflowStatus.FAILED
    assert instance.error.type == "RaceLostError"
    assert instance.error.step == "node"
    for text in ("one", "two", "first down", "second down", "ValueError", "KeyError"):
        assert text in instance.error.message


def test_cancelling_a_race_cancels_every_branch(run: Any) -> None:
    async def main() -> tuple[Any, Sleeper, Sleeper]:
        first, second = Sleeper(), Sleeper()
        race = RaceGroup(step("first", first), step("second", second))
        engine = engine_for(single(race, name="race"))
        started = asyncio.create_task(engine.start_workflow("race"))
        await within(first.started.wait())
        await within(second.started.wait())
        (instance,) = engine.list_instances(WorkflowStatus.RUNNING)
        await within(engine.cancel_workflow(instance.id))
        return await within(started), first, second

    instance, first, second = run(main())
    assert instance.status == WorkflowStatus.CANCELLED
    assert first.finally_ran and second.finally_ran
