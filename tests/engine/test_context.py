"""Contexts: dotted paths, JSON-only values, isolated branches, merges in declaration order,
conflicts, ``last_wins`` and reducers, return values and where they are stored."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest

from engine.helpers import engine_for, single, step, within, writer
from shardflow import (
    ContextValueError,
    Edge,
    ParallelGroup,
    WorkflowContext,
    WorkflowDefinition,
    WorkflowStatus,
)


# -- dotted paths ---------------------------------------------------------------------------------
def test_dotted_set_creates_nested_dicts_and_get_walks_them() -> None:
    ctx = WorkflowContext({"order": {"id": 7}})
    ctx.set("order.customer.name", "Ada")
    ctx.set("order.total", 12.5)
    assert ctx.get("order") == {"id": 7, "customer": {"name": "Ada"}, "total": 12.5}
    assert ctx.get("order.customer.name") == "Ada"
    assert ctx["order.id"] == 7
    assert "order.customer" in ctx
    assert "order.missing" not in ctx


def test_dotted_get_returns_the_default_for_missing_parts() -> None:
    ctx = WorkflowContext({"a": {"b": 1}, "n": None})
    assert ctx.get("a.c") is None
    assert ctx.get("a.c", "dflt") == "dflt"
    assert ctx.get("a.b.c", "dflt") == "dflt"  # through a non-dict
    assert ctx.get("x.y.z", 0) == 0
    assert ctx.get("n", "dflt") is None  # a stored None is a value, not a missing key
    with pytest.raises(KeyError):
        ctx["a.c"]


def test_dotted_set_replaces_a_scalar_on_its_path() -> None:
    ctx = WorkflowContext({"a": 1})
    ctx.set("a.b", 2)
    assert ctx.get("a") == {"b": 2}


def test_initial_data_is_not_changed_by_writes() -> None:
    initial = {"cfg": {"retries": 1}, "tags": ["x"]}
    ctx = WorkflowContext(initial)
    ctx.set("cfg.timeout", 5)
    ctx.set("new", True)
    assert initial == {"cfg": {"retries": 1}, "tags": ["x"]}


def test_a_fork_sees_its_parent_and_writes_only_to_itself() -> None:
    parent = WorkflowContext({"cfg": {"a": 1}})
    left, right = parent.fork(), parent.fork()
    left.set("cfg.b", 2)
    left.set("left", True)
    assert right.get("cfg") == {"a": 1}
    assert "left" not in right
    assert parent.get("cfg") == {"a": 1}
    assert left.get("cfg") == {"a": 1, "b": 2}
    assert left.writes() == {"cfg.b": 2, "left": True}


# -- JSON only ------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [datetime(2024, 1, 1), {1, 2}, object(), {"nested": [b"bytes"]}])
def test_set_rejects_a_non_json_value_naming_the_key(value: Any) -> None:
    ctx = WorkflowContext()
    ctx.current_step = "charge"
    with pytest.raises(ContextValueError) as caught:
        ctx.set("payment.when", value)
    assert (caught.value.key, caught.value.step) == ("payment.when", "charge")
    assert "'payment.when'" in str(caught.value) and "'charge'" in str(caught.value)
    assert "payment" not in ctx


def test_a_step_writing_a_non_json_value_fails_naming_step_and_key(run: Any) -> None:
    async def body(context: WorkflowContext) -> None:
        context.set("paid_at", datetime(2024, 1, 1))

    async def main() -> Any:
        return await within(engine_for(single(step("charge", body))).start_workflow("single"))

    instance = run(main())
    assert instance.status == WorkflowStatus.FAILED
    assert instance.error.type == "ContextValueError"
    assert instance.error.step == "node"
    assert "'paid_at'" in instance.error.message and "'node'" in instance.error.message


def test_a_step_returning_a_non_json_value_completes_with_the_value_in_its_history(run: Any) -> None:
    when = datetime(2024, 1, 1)

    async def body(context: WorkflowContext) -> Any:
        context.set("charged", True)
        return {"when": when}

    async def main() -> Any:
        return await within(engine_for(single(step("charge", body))).start_workflow("single"))

    instance = run(main())
    assert instance.status == WorkflowStatus.COMPLETED
    assert instance.context.data == {"charged": True}  # the value is not in the data
    [execution] = instance.context.step_history
    assert (execution.step_name, execution.status, execution.result) == (
        "node", "succeeded", {"when": when})


def test_an_opted_in_non_json_return_value_fails_naming_step_and_key(run: Any) -> None:
    async def body(context: WorkflowContext) -> Any:
        return {"when": datetime(2024, 1, 1)}

    async def main() -> Any:
        charge = step("charge", body, store_result=True)
        return await within(engine_for(single(charge)).start_workflow("single"))

    instance = run(main())
    assert instance.status == WorkflowStatus.FAILED
    assert instance.error.type == "ContextValueError"
    assert "'node'" in instance.error.message  # the key: the node id


# -- return values --------------------------------------------------------------------------------
def _returns_workflow(store: bool) -> WorkflowDefinition:
    async def price(context: WorkflowContext) -> Any:
        context.set("quote", {"currency": "EUR"})  # the step's own write under its node id
        return {"amount": 42}

    async def nothing(context: WorkflowContext) -> None:
        return None

    async def total(context: WorkflowContext) -> Any:
        return (context.get("quote.amount") or 0) + 1

    return WorkflowDefinition(
        name="returns",
        steps={"quote": step("price_step", price, store_result=store),
               "noop": step("noop_step", nothing, store_result=store),
               "sum": step("sum_step", total, store_result=store)},
        edges=[Edge("quote", "noop"), Edge("noop", "sum")],
        initial_step="quote",
        terminal_steps={"sum"},
    )


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "interpreted"])
def test_a_return_value_goes_to_the_history_and_never_overwrites_the_steps_writes(
        run: Any, compiled: bool) -> None:
    workflow = _returns_workflow(store=False)
    if not compiled:  # a condition keeps the plan interpreted
        workflow.edges[0] = Edge("quote", "noop", condition=lambda ctx: True)

    async def main() -> Any:
        return await within(engine_for(workflow).start_workflow("returns"))

    instance = run(main())
    assert instance.context.data == {"quote": {"currency": "EUR"}}
    history = instance.context.step_history
    assert [(e.step_name, e.status, e.result) for e in history] == [
        ("quote", "succeeded", {"amount": 42}), ("noop", "succeeded", None),
        ("sum", "succeeded", 1)]
    assert instance.context.get_last_execution("quote").result == {"amount": 42}
    assert all(e.started_at.tzinfo is not None and e.completed_at >= e.started_at
               for e in history)


def test_store_result_opts_in_to_storing_the_return_value_under_the_node_id(run: Any) -> None:
    async def main() -> Any:
        return await within(engine_for(_returns_workflow(store=True)).start_workflow("returns"))

    instance = run(main())
    assert instance.context.data == {"quote": {"amount": 42}, "sum": 43}


def test_a_branch_return_value_is_stored_under_its_step_name_when_opted_in(run: Any) -> None:
    async def one(context: WorkflowContext) -> Any:
        return 1

    async def two(context: WorkflowContext) -> Any:
        return [2]

    async def main() -> Any:
        workflow = single(ParallelGroup(step("one", one, store_result=True),
                                        step("two", two, store_result=True)),
                          name="group_returns")
        return await within(engine_for(workflow).start_workflow("group_returns"))

    instance = run(main())
    assert instance.context.data == {"one": 1, "two": [2]}


# -- isolation ------------------------------------------------------------------------------------
def test_a_branch_does_not_see_a_siblings_writes(run: Any) -> None:
    """``peek`` reads only after ``write`` has finished, and still sees the state at the fork."""

    async def main() -> Any:
        written = asyncio.Event()

        async def write(context: WorkflowContext) -> None:
            context.set("secret", 1)
            context.set("cfg.extra", True)
            written.set()

        async def peek(context: WorkflowContext) -> None:
            await written.wait()
            context.set("peek_saw", {"secret": context.get("secret"), "cfg": context.get("cfg")})

        workflow = single(ParallelGroup(step("write", write), step("peek", peek)), name="iso")
        return await within(engine_for(workflow).start_workflow("iso", {"cfg": {"base": 1}}))

    instance = run(main())
    assert instance.context.get("peek_saw") == {"secret": None, "cfg": {"base": 1}}
    assert instance.context.get("cfg") == {"base": 1, "extra": True}
    assert instance.context.get("secret") == 1


def test_edge_branches_are_isolated_too(run: Any) -> None:
    async def main() -> Any:
        written = asyncio.Event()

        async def write(context: WorkflowContext) -> None:
            context.set("secret", 1)
            written.set()

        async def peek(context: WorkflowContext) -> None:
            await written.wait()
            context.set("peek_saw", context.get("secret", "nothing"))

        workflow = WorkflowDefinition(
            name="iso_edges",
            steps={"start": writer("start"), "write": step("write", write), "peek": step("peek", peek),
                   "end": writer("end")},
            edges=[Edge("start", "write"), Edge("start", "peek"), Edge("write", "end"), Edge("peek", "end")],
            initial_step="start",
            terminal_steps={"end"},
        )
        return await within(engine_for(workflow).start_workflow("iso_edges"))

    instance = run(main())
    assert instance.context.get("peek_saw") == "nothing"
    assert instance.context.get("secret") == 1


# -- merging --------------------------------------------------------------------------------------
def ordered_group(finish_order: list[str], writes: dict[str, Any], **group_options: Any) -> ParallelGroup:
    """Branches a, b, c writing ``writes[name]`` to ``key`` and finishing in ``finish_order``
    (each waits for its predecessor in that order to finish)."""
    done: dict[str, asyncio.Event] = {}

    def branch(name: str) -> Any:
        async def body(context: WorkflowContext) -> None:
            done.setdefault(name, asyncio.Event())
            position = finish_order.index(name)
            if position:
                before = finish_order[position - 1]
                await done.setdefault(before, asyncio.Event()).wait()
            context.set("key", writes[name])
            context.set(f"{name}_finished", position)
            done[name].set()
        return body

    return ParallelGroup(*(step(n, branch(n)) for n in ("a", "b", "c")), **group_options)


ORDERS = [["a", "b", "c"], ["c", "b", "a"], ["b", "c", "a"]]


@pytest.mark.parametrize("finish_order", ORDERS, ids="-".join)
def test_last_wins_follows_declaration_order_not_completion_order(run: Any, finish_order: list[str]) -> None:
    async def main() -> Any:
        group = ordered_group(finish_order, {"a": "A", "b": "B", "c": "C"})
        engine = engine_for(single(group, name="lw", merge_policy="last_wins"))
        return await within(engine.start_workflow("lw"))

    instance = run(main())
    assert instance.status == WorkflowStatus.COMPLETED
    assert [instance.context.get(f"{n}_finished") for n in finish_order] == [0, 1, 2]
    assert instance.context.get("key") == "C"


REDUCER_CASES = [
    ("append", {"a": 1, "b": 2, "c": 3}, [1, 2, 3]),
    ("extend", {"a": [1], "b": [2, 3], "c": []}, [1, 2, 3]),
    ("sum", {"a": 1, "b": 2.5, "c": 3}, 6.5),
    ("max", {"a": 4, "b": 9, "c": 1}, 9),
    ("min", {"a": 4, "b": 9, "c": 1}, 1),
    ("merge", {"a": {"x": 1}, "b": {"y": 2}, "c": {"x": 3}}, {"x": 3, "y": 2}),
    (lambda acc, value: f"{acc}+{value}", {"a": "a", "b": "b", "c": "c"}, "a+b+c"),
]


@pytest.mark.parametrize("finish_order", ORDERS, ids="-".join)
@pytest.mark.parametrize(("reducer", "writes", "expected"), REDUCER_CASES,
                         ids=["append", "extend", "sum", "max", "min", "merge", "callable"])
def test_reducers_fold_branch_values_in_declaration_order(
    run: Any, reducer: Any, writes: dict[str, Any], expected: Any, finish_order: list[str]
) -> None:
    async def main() -> Any:
        group = ordered_group(finish_order, writes)
        engine = engine_for(single(group, name="reduce", reducers={"key": reducer}))
        return await within(engine.start_workflow("reduce"))

    instance = run(main())
    assert instance.status == WorkflowStatus.COMPLETED
    assert instance.context.get("key") == expected


def test_reducers_and_last_wins_apply_at_edge_joins_in_edge_declaration_order(run: Any) -> None:
    """The join's incoming edges are declared c, a, b: that is the merge order."""
    workflow = WorkflowDefinition(
        name="edge_join",
        steps={"start": writer("start"), "a": writer("a", items="a", who="a"),
               "b": writer("b", items="b", who="b"), "c": writer("c", items="c", who="c"),
               "join": writer("join")},
        edges=[Edge("start", "a"), Edge("start", "b"), Edge("start", "c"),
               Edge("c", "join"), Edge("a", "join"), Edge("b", "join")],
        initial_step="start",
        terminal_steps={"join"},
        merge_policy="last_wins",
        reducers={"items": "append"},
    )

    async def main() -> Any:
        return await within(engine_for(workflow).start_workflow("edge_join"))

    instance = run(main())
    assert instance.context.get("items") == ["c", "a", "b"]
    assert instance.context.get("who") == "b"


def test_conflicting_writes_fail_the_instance_naming_key_and_branches(run: Any) -> None:
    async def main() -> Any:
        group = ParallelGroup(writer("a", total=1), writer("b", same=True, total=2),
                              writer("c", same=True))
        return await within(engine_for(single(group, name="conflict")).start_workflow("conflict"))

    instance = run(main())
    assert instance.status == WorkflowStatus.FAILED
    assert instance.error.type == "MergeConflictError"
    assert instance.error.step == "node"
    assert "'total'" in instance.error.message
    assert "'a'" in instance.error.message and "'b'" in instance.error.message


def test_conflicting_writes_at_an_edge_join(run: Any) -> None:
    workflow = WorkflowDefinition(
        name="edge_conflict",
        steps={"start": writer("start"), "left": writer("left", result={"v": 1}),
               "right": writer("right", result={"v": 2}), "join": writer("join", joined=True)},
        edges=[Edge("start", "left"), Edge("start", "right"), Edge("left", "join"), Edge("right", "join")],
        initial_step="start",
        terminal_steps={"join"},
    )

    async def main() -> Any:
        return await within(engine_for(workflow).start_workflow("edge_conflict"))

    instance = run(main())
    assert instance.status == WorkflowStatus.FAILED
    assert instance.error.type == "MergeConflictError"
    assert instance.error.step == "join"
    assert "'result'" in instance.error.message
    assert "'left'" in instance.error.message and "'right'" in instance.error.message
    assert [r.node for r in instance.history if r.node == "join"] == []


def test_overlapping_dotted_writes_conflict(run: Any) -> None:
    async def main() -> Any:
        group = ParallelGroup(writer("a", cfg={"x": 1}), writer("b", cfg__y=2))
        return await within(engine_for(single(group, name="overlap")).start_workflow("overlap"))

    instance = run(main())
    assert instance.status == WorkflowStatus.FAILED
    assert instance.error.type == "MergeConflictError"
    assert "'cfg'" in instance.error.message


def test_disjoint_dotted_writes_merge(run: Any) -> None:
    async def main() -> Any:
        group = ParallelGroup(writer("a", cfg__x=1), writer("b", cfg__y=2))
        return await within(engine_for(single(group, name="nested")).start_workflow("nested", {"cfg": {"z": 0}}))

    instance = run(main())
    assert instance.status == WorkflowStatus.COMPLETED
    assert instance.context.get("cfg") == {"z": 0, "x": 1, "y": 2}


def test_two_terminal_steps_writing_different_values_fail_the_instance(run: Any) -> None:
    """The final context merges the sinks; a conflict there fails the instance (it must not
    escape from start_workflow and leave the instance running)."""
    workflow = WorkflowDefinition(
        name="sinks",
        steps={"start": writer("start"), "a": writer("a", k=1), "b": writer("b", k=2)},
        edges=[Edge("start", "a"), Edge("start", "b")],
        initial_step="start",
        terminal_steps={"a", "b"},
    )

    async def main() -> Any:
        engine = engine_for(workflow)
        instance = await within(engine.start_workflow("sinks"))
        return instance, engine.list_instances(WorkflowStatus.RUNNING)

    instance, running = run(main())
    assert instance.status == WorkflowStatus.FAILED
    assert instance.error.type == "MergeConflictError"
    assert "'k'" in instance.error.message
    assert running == []
