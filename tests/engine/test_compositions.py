"""Groups inside groups, races inside groups, and many instances side by side."""

from __future__ import annotations

import asyncio
from typing import Any

from engine.helpers import Rendezvous, engine_for, single, step, within, writer
from shardflow import Edge, ParallelGroup, RaceGroup, WorkflowContext, WorkflowDefinition, WorkflowStatus


def test_a_group_inside_a_group(run: Any) -> None:
    async def main() -> Any:
        inner = ParallelGroup(writer("x", x=1), writer("y", y=2), callback=writer("inner_cb", inner_done=True),
                              name="inner")
        outer = ParallelGroup(inner, writer("z", z=3), callback=writer("outer_cb", outer_done=True))
        return await within(engine_for(single(outer, name="nested")).start_workflow("nested"))

    instance = run(main())
    assert instance.status == WorkflowStatus.COMPLETED
    assert instance.context.data == {"x": 1, "y": 2, "inner_done": True, "z": 3, "outer_done": True}
    assert {r.node for r in instance.history} == {
        "node/inner/x", "node/inner/y", "node/inner/inner_cb", "node/z", "node/outer_cb"}


def test_a_race_inside_a_group(run: Any) -> None:
    async def main() -> Any:
        go = asyncio.Event()

        async def slow(context: WorkflowContext) -> None:
            await asyncio.Event().wait()

        async def fast(context: WorkflowContext) -> Any:
            await go.wait()
            return "fast"

        async def other(context: WorkflowContext) -> None:
            context.set("other", True)
            go.set()

        race = RaceGroup(step("slow", slow), step("fast", fast, store_result=True), name="pick")
        group = ParallelGroup(race, step("other", other))
        return await within(engine_for(single(group, name="race_in_group")).start_workflow("race_in_group"))

    instance = run(main())
    assert instance.status == WorkflowStatus.COMPLETED
    assert instance.context.data == {"fast": "fast", "other": True}
    assert {r.node: r.status for r in instance.history}["node/pick/slow"] == "canceled"


def test_a_failing_inner_group_in_a_tolerant_group(run: Any) -> None:
    async def boom(context: WorkflowContext) -> None:
        raise ValueError("inner broke")

    async def main() -> Any:
        inner = ParallelGroup(step("bad", boom), writer("fine", fine=True), name="inner")
        outer = ParallelGroup(inner, writer("ok", ok=True), tolerate_failures=True)
        return await within(engine_for(single(outer, name="tolerant")).start_workflow("tolerant"))

    instance = run(main())
    assert instance.status == WorkflowStatus.COMPLETED
    assert instance.context.get("node.errors") == {"inner": {"type": "ValueError", "message": "inner broke"}}
    assert instance.context.get("ok") is True
    assert "fine" not in instance.context  # the failed inner group's writes are dropped


def test_min_success_zero_goes_on_when_every_branch_fails(run: Any) -> None:
    async def boom(context: WorkflowContext) -> None:
        raise ValueError("no")

    async def main() -> Any:
        group = ParallelGroup(step("a", boom), step("b", boom), min_success=0)
        workflow = WorkflowDefinition(name="zero", steps={"g": group, "after": writer("after", after=True)},
                                      edges=[Edge("g", "after")], initial_step="g", terminal_steps={"after"})
        return await within(engine_for(workflow).start_workflow("zero"))

    instance = run(main())
    assert instance.status == WorkflowStatus.COMPLETED
    assert sorted(instance.context.get("g.errors")) == ["a", "b"]
    assert instance.context.get("after") is True


def test_concurrent_instances_do_not_share_data(run: Any) -> None:
    """Fifty instances in flight at once, all started from the same nested input dict: each
    sees only its own writes, and the caller's dict is never changed."""
    shared_input = {"order": {"lines": 2}, "tag": "x"}

    async def main() -> list[Any]:
        meet = Rendezvous(50)

        async def tag(context: WorkflowContext) -> None:
            context.set("order.owner", context.instance_id)
            await meet.arrive(context.instance_id)  # every instance is between write and read
            context.set("owner_seen", context.get("order.owner"))

        workflow = WorkflowDefinition(
            name="isolated",
            steps={"tag": step("tag", tag), "a": writer("a", a=True), "b": writer("b", b=True),
                   "join": writer("join")},
            edges=[Edge("tag", "a"), Edge("tag", "b"), Edge("a", "join"), Edge("b", "join")],
            initial_step="tag",
            terminal_steps={"join"},
        )
        engine = engine_for(workflow)
        return list(await within(asyncio.gather(*(engine.start_workflow("isolated", shared_input)
                                                  for _ in range(50)))))

    instances = run(main())
    assert shared_input == {"order": {"lines": 2}, "tag": "x"}
    for instance in instances:
        assert instance.status == WorkflowStatus.COMPLETED
        assert instance.context.get("order") == {"lines": 2, "owner": instance.id}
        assert instance.context.get("owner_seen") == instance.id
