"""Real joins with dead-path elimination (docs/SEMANTICS.md, "Joins"): a node runs
once, when every incoming edge is resolved; with no edge taken it is skipped and the skip
propagates."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from engine.helpers import engine_for, history_of, step, within
from shardflow import BaseMachineStep, Edge, WorkflowContext, WorkflowDefinition, WorkflowStatus


def recorder(name: str, ran: list[str], **writes: Any) -> BaseMachineStep:
    """A step that appends its name to ``ran`` and writes ``writes`` plus ``<name>_saw``: the
    keys it could see when it ran."""

    async def body(context: WorkflowContext) -> None:
        ran.append(name)
        context.set(f"{name}_saw", sorted(context.keys()))
        for key, value in writes.items():
            context.set(key, value)

    return step(name, body)


def sync_is(value: str) -> Callable[[WorkflowContext], bool]:
    return lambda ctx: ctx.get("route") == value


def async_is(value: str) -> Callable[[WorkflowContext], Any]:
    async def condition(ctx: WorkflowContext) -> bool:
        await asyncio.sleep(0)
        return bool(ctx.get("route") == value)

    return condition


def if_else(ran: list[str], make: Callable[[str], Any]) -> WorkflowDefinition:
    return WorkflowDefinition(
        name="if_else",
        steps={
            "decide": recorder("decide", ran),
            "left": recorder("left", ran, side="left"),
            "right": recorder("right", ran, side="right"),
            "join": recorder("join", ran),
        },
        edges=[
            Edge("decide", "left", condition=make("left")),
            Edge("decide", "right", condition=make("right")),
            Edge("left", "join"),
            Edge("right", "join"),
        ],
        initial_step="decide",
        terminal_steps={"join"},
    )


@pytest.mark.parametrize("make", [sync_is, async_is], ids=["sync", "async"])
@pytest.mark.parametrize(("route", "skipped"), [("left", "right"), ("right", "left")])
def test_join_after_if_else_runs_once(run: Any, make: Any, route: str, skipped: str) -> None:
    ran: list[str] = []

    async def main() -> Any:
        engine = engine_for(if_else(ran, make))
        return await within(engine.start_workflow("if_else", {"route": route}))

    instance = run(main())
    assert instance.status == WorkflowStatus.COMPLETED
    assert ran == ["decide", route, "join"]
    assert instance.context.get("side") == route
    assert [r.status for r in history_of(instance, skipped)] == ["skipped"]
    assert [r.status for r in history_of(instance, "join")] == ["completed"]


def test_skip_propagates_down_a_dead_path(run: Any) -> None:
    """start -> x (not taken) -> y -> end and start -> z -> end: x and y are skipped, end runs
    once, after z."""
    ran: list[str] = []
    workflow = WorkflowDefinition(
        name="dead_path",
        steps={name: recorder(name, ran, **{name: True}) for name in ("start", "x", "y", "z", "end")},
        edges=[
            Edge("start", "x", condition=lambda ctx: False),
            Edge("x", "y"),
            Edge("y", "end"),
            Edge("start", "z"),
            Edge("z", "end"),
        ],
        initial_step="start",
        terminal_steps={"end"},
    )

    async def main() -> Any:
        return await within(engine_for(workflow).start_workflow("dead_path"))

    instance = run(main())
    assert instance.status == WorkflowStatus.COMPLETED
    assert ran == ["start", "z", "end"]
    statuses = {r.node: r.status for r in instance.history}
    assert statuses == {"start": "completed", "x": "skipped", "y": "skipped", "z": "completed",
                        "end": "completed"}
    assert "x" not in instance.context
    assert "y" not in instance.context


@pytest.mark.parametrize("retries", [0, 1])
def test_a_join_with_no_edge_taken_is_skipped(run: Any, retries: int) -> None:
    """Neither branch is taken: both and the join are skipped, the instance completes, and its
    context holds what the steps that did run wrote."""
    ran: list[str] = []

    async def start(context: WorkflowContext) -> None:
        ran.append("start")
        context.set("started", True)

    workflow = WorkflowDefinition(
        name="nothing_taken",
        steps={
            "start": step("start", start, retries=retries),
            "a": recorder("a", ran),
            "b": recorder("b", ran),
            "end": recorder("end", ran),
        },
        edges=[
            Edge("start", "a", condition=lambda ctx: False),
            Edge("start", "b", condition=lambda ctx: False),
            Edge("a", "end"),
            Edge("b", "end"),
        ],
        initial_step="start",
        terminal_steps={"end"},
    )

    async def main() -> Any:
        return await within(engine_for(workflow).start_workflow("nothing_taken", {"n": 1}))

    instance = run(main())
    assert instance.status == WorkflowStatus.COMPLETED
    assert ran == ["start"]
    assert {r.node: r.status for r in instance.history if r.status == "skipped"} == {
        "a": "skipped", "b": "skipped", "end": "skipped"}
    assert instance.context.data == {"n": 1, "started": True}


def test_join_waits_for_its_slowest_branch(run: Any) -> None:
    """A three-way fork where one branch is a chain of two steps, and the short branches finish
    first: the join runs once, after the chain, with everything merged."""
    ran: list[str] = []

    async def main() -> Any:
        short_done = asyncio.Event()

        async def chain_head(context: WorkflowContext) -> None:
            await short_done.wait()  # the chain goes on only once both short branches ended
            ran.append("chain1")
            context.set("chain1", True)

        async def short(context: WorkflowContext) -> None:
            ran.append("short")
            context.set(f"short_{ran.count('short')}", True)
            if ran.count("short") == 2:
                short_done.set()

        workflow = WorkflowDefinition(
            name="uneven",
            steps={
                "fork": recorder("fork", ran),
                "chain1": step("chain1", chain_head),
                "chain2": recorder("chain2", ran, chain2=True),
                "short_a": step("short_a", short),
                "short_b": step("short_b", short),
                "join": recorder("join", ran),
            },
            edges=[
                Edge("fork", "chain1"), Edge("fork", "short_a"), Edge("fork", "short_b"),
                Edge("chain1", "chain2"),
                Edge("chain2", "join"), Edge("short_a", "join"), Edge("short_b", "join"),
            ],
            initial_step="fork",
            terminal_steps={"join"},
        )
        return await within(engine_for(workflow).start_workflow("uneven"))

    instance = run(main())
    assert instance.status == WorkflowStatus.COMPLETED
    assert ran == ["fork", "short", "short", "chain1", "chain2", "join"]
    assert instance.context.get("join_saw") == [
        "chain1", "chain2", "chain2_saw", "fork_saw", "short_1", "short_2"]


def test_conditions_see_the_source_steps_writes(run: Any) -> None:
    ran: list[str] = []
    workflow = WorkflowDefinition(
        name="routing",
        steps={
            "score": recorder("score", ran, score=7),
            "high": recorder("high", ran),
            "low": recorder("low", ran),
        },
        edges=[
            Edge("score", "high", condition=lambda ctx: ctx.get("score") > 5),
            Edge("score", "low", condition=lambda ctx: ctx.get("score") <= 5),
        ],
        initial_step="score",
        terminal_steps={"high", "low"},
    )

    async def main() -> Any:
        return await within(engine_for(workflow).start_workflow("routing"))

    instance = run(main())
    assert instance.status == WorkflowStatus.COMPLETED
    assert ran == ["score", "high"]
    assert [r.status for r in history_of(instance, "low")] == ["skipped"]


def test_two_taken_conditional_edges_fork(run: Any) -> None:
    ran: list[str] = []
    workflow = WorkflowDefinition(
        name="both",
        steps={n: recorder(n, ran, **{n: True}) for n in ("start", "a", "b", "end")},
        edges=[
            Edge("start", "a", condition=lambda ctx: True),
            Edge("start", "b", condition=lambda ctx: True),
            Edge("a", "end"),
            Edge("b", "end"),
        ],
        initial_step="start",
        terminal_steps={"end"},
    )

    async def main() -> Any:
        return await within(engine_for(workflow).start_workflow("both"))

    instance = run(main())
    assert ran.count("end") == 1
    assert all(instance.context.get(k) for k in ("start", "a", "b", "end"))
    assert instance.context.get("a_saw") == ["start", "start_saw"]  # a did not see b


def test_a_raising_condition_fails_the_instance_naming_the_edge(run: Any) -> None:
    ran: list[str] = []

    def broken(ctx: WorkflowContext) -> bool:
        raise LookupError("no route")

    workflow = WorkflowDefinition(
        name="broken_condition",
        steps={"a": recorder("a", ran), "b": recorder("b", ran)},
        edges=[Edge("a", "b", condition=broken)],
        initial_step="a",
        terminal_steps={"b"},
    )

    async def main() -> Any:
        return await within(engine_for(workflow).start_workflow("broken_condition"))

    instance = run(main())
    assert instance.status == WorkflowStatus.FAILED
    assert instance.error is not None
    assert "a" in instance.error.step and "b" in instance.error.step
    assert (instance.error.type, instance.error.message) == ("LookupError", "no route")
    assert ran == ["a"]


def test_several_sinks_are_merged_into_the_final_context(run: Any) -> None:
    ran: list[str] = []
    workflow = WorkflowDefinition(
        name="two_sinks",
        steps={"start": recorder("start", ran), "a": recorder("a", ran, a=1),
               "b": recorder("b", ran, b=2)},
        edges=[Edge("start", "a"), Edge("start", "b")],
        initial_step="start",
        terminal_steps={"a", "b"},
    )

    async def main() -> Any:
        return await within(engine_for(workflow).start_workflow("two_sinks"))

    instance = run(main())
    assert instance.status == WorkflowStatus.COMPLETED
    assert (instance.context.get("a"), instance.context.get("b")) == (1, 2)


def test_a_join_merges_branches_that_were_retried(run: Any) -> None:
    """Branches whose successful attempt ran on a fork of a fork still merge at the join, and
    their failed attempts' writes stay out."""
    attempts: dict[str, int] = {}

    def flaky(name: str) -> Any:
        async def body(context: WorkflowContext) -> None:
            attempts[name] = attempts.get(name, 0) + 1
            context.set(f"{name}_attempt", attempts[name])
            if attempts[name] == 1:
                context.set("leaked", name)
                raise ConnectionError("first attempt fails")
        return step(name, body, retries=1)

    workflow = WorkflowDefinition(
        name="retried_join",
        steps={"start": flaky("start"), "a": flaky("a"), "b": flaky("b"), "join": flaky("join")},
        edges=[Edge("start", "a"), Edge("start", "b"), Edge("a", "join"), Edge("b", "join")],
        initial_step="start",
        terminal_steps={"join"},
    )

    async def main() -> Any:
        return await within(engine_for(workflow).start_workflow("retried_join"))

    instance = run(main())
    assert instance.status == WorkflowStatus.COMPLETED
    assert instance.context.data == {"start_attempt": 2, "a_attempt": 2, "b_attempt": 2, "join_attempt": 2}
