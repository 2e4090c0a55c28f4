"""The step attempt and the edge arrival run the same in both their forms.

``engine/attempt.py`` (the step attempt) and ``engine/arrival.py`` (the edge arrival) hold
each rule as a function (what the interpreter calls) and as a template (what a compiled
schedule runs). Here both forms run on the same cases and must
record, write and raise the same."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

import pytest

from shardflow import BaseMachineStep, Edge, WorkflowContext, WorkflowDefinition
from shardflow._clock import LoopClock
from shardflow.context.history import INDEXES, DetachedSource, recorded_result
from shardflow.engine import arrival, attempt
from shardflow.engine.attempt import StepFailure
from shardflow.engine.state import InstanceState
from shardflow.engine.stepstats import StepStats


class Probe(BaseMachineStep):
    """A step that does what its case says (returns, raises, waits to be cancelled)."""

    name = "probe"

    def __init__(self, case: str) -> None:
        super().__init__()
        self.case = case
        self.seen: str | None = None
        self.entered = asyncio.Event()

    async def execute(self, context: WorkflowContext) -> Any:
        self.seen = context.current_step
        self.entered.set()
        context.set("touched", True)
        if self.case == "returns":
            return {"n": 1}
        if self.case == "value_error":
            raise ValueError("bad")
        if self.case == "keyboard_interrupt":
            raise KeyboardInterrupt
        if self.case == "own_cancelled_error":
            raise asyncio.CancelledError  # raised by the step, not a cancellation of its task
        if self.case == "cancelled":
            await asyncio.Event().wait()
        return None


CASES = ["returns", "returns_none", "value_error", "keyboard_interrupt",
         "own_cancelled_error", "cancelled"]


def _template(counted: bool) -> Callable[..., Any]:
    """The template form of a plain step's attempt, compiled as a schedule would."""
    lines = ["async def attempt_of(state, ctx):\n"]
    lines.append("    stats = state.stats\n    durations = stats.durations\n" if counted
                 else "    log = state.step_log\n")
    lines += attempt.step_source("node", "STEP", True, counted, "    ")
    lines.append("    return ctx\n")
    return lambda step: _compiled(lines, {"STEP": step})["attempt_of"]


def _compiled(lines: list[str], extra: dict[str, Any]) -> dict[str, Any]:
    namespace = {**attempt.NAMESPACE, **arrival.NAMESPACE, **extra}
    exec(compile("".join(lines), "<attempt template>", "exec"), namespace)
    return namespace


def _definition() -> WorkflowDefinition:
    return WorkflowDefinition(name="one", steps={"node": Probe("returns")}, edges=[],
                              initial_step="node", terminal_steps={"node"})


class _Index(dict[str, Any]):
    """An instance index as an engine's window is one (weakly referenceable, hashable)."""

    __hash__ = object.__hash__  # type: ignore[assignment]


async def _one_form(form: str, case: str, counted: bool) -> tuple[Any, ...]:
    step = Probe(case)
    state = InstanceState(_definition().plan, "i", LoopClock(),
                          stats=StepStats() if counted else None)
    ctx = WorkflowContext.initial({"id": 1}, "i")
    index = _Index({"i": DetachedSource(steps=state.history)})  # as an engine's window
    INDEXES.add(index)
    if form == "function":
        work = attempt.run_step(step, ctx, "node", "node", state.clock, None, state.step_log,
                                state.stats)
    else:
        work = _template(counted)(step)(state, ctx)
    task = asyncio.ensure_future(work)
    if case == "cancelled":
        await step.entered.wait()
        task.cancel()
    outcome: Any
    try:
        out = await task
        outcome = ("returned", out is ctx)
    except StepFailure as failure:
        outcome = ("StepFailure", failure.node, type(failure.error).__name__,
                   failure.context is ctx, failure.__cause__ is failure.error)
    except BaseException as exc:
        outcome = ("raised", type(exc).__name__)
    log = [(n, status, attempts, None if error is None else error.type)
           for n, status, attempts, _, _, error in state.history]
    counts = {k: len(v) for k, v in state.stats.durations.items()} if counted else None
    returned = recorded_result(ctx, "node")
    INDEXES.discard(index)
    return (outcome, log, counts, ctx.writes(), step.seen, ctx.current_step, returned)


@pytest.mark.parametrize(("case", "counted"), list(itertools.product(CASES, [False, True])))
def test_a_plain_step_attempt_runs_the_same_in_both_forms(case: str, counted: bool) -> None:
    function = asyncio.run(_one_form("function", case, counted))
    template = asyncio.run(_one_form("template", case, counted))
    assert function == template
    outcome, log, counts, writes, seen, after, returned = function
    assert seen == "node" and after is None  # the running step is named, then cleared
    assert writes["touched"] is True
    expected = {"returns": ("returned", True), "returns_none": ("returned", True),
                "value_error": ("StepFailure", "node", "ValueError", True, True),
                "keyboard_interrupt": ("StepFailure", "node", "KeyboardInterrupt", True, True),
                "own_cancelled_error": ("StepFailure", "node", "CancelledError", True, True),
                "cancelled": ("raised", "CancelledError")}
    assert outcome == expected[case]
    status = {"returns": "completed", "returns_none": "completed",
              "cancelled": "canceled"}.get(case, "failed")
    if counted:
        assert log == [] and counts == {"node": 1}
    else:
        error = None if status != "failed" else expected[case][2]
        assert log == [("node", status, 1, error)]
    assert "node" not in writes  # a return value never lands in the context
    assert returned == ({"n": 1} if case == "returns" else None)  # it is recorded instead


class Storing(Probe):
    store_result = True  # the opt-in: the return value is also stored under the node id


@pytest.mark.parametrize("case", ["returns", "returns_none"])
def test_store_result_stores_the_return_value_in_both_forms(case: str) -> None:
    async def one(form: str) -> dict[str, Any]:
        step = Storing(case)
        state = InstanceState(_definition().plan, "i", LoopClock())
        ctx = WorkflowContext.initial({"id": 1}, "i")
        if form == "function":
            out = await attempt.run_step(step, ctx, "node", "node", state.clock, None,
                                         state.step_log)
        else:
            lines = ["async def attempt_of(state, ctx):\n", "    log = state.step_log\n",
                     *attempt.step_source("node", "STEP", True, False, "    ", store=True),
                     "    return ctx\n"]
            out = await _compiled(lines, {"STEP": step})["attempt_of"](state, ctx)
        assert out is not None
        return out.writes()

    function, template = asyncio.run(one("function")), asyncio.run(one("template"))
    assert function == template
    assert function.get("node") == ({"n": 1} if case == "returns" else None)


def _join_plan(merge_policy: str) -> Any:
    steps = {n: Probe("returns") for n in ("a", "b", "c", "join")}
    edges = [Edge("a", "join"), Edge("b", "join"), Edge("c", "join")]
    return WorkflowDefinition(name="join", steps={"start": Probe("returns"), **steps},
                              edges=[Edge("start", "a"), Edge("start", "b"),
                                     Edge("start", "c"), *edges],
                              initial_step="start", terminal_steps={"join"},
                              merge_policy=merge_policy).plan


def _arrival_template(plan: Any, source: str, index: int) -> Callable[..., Any]:
    lines, inner = arrival.arrival_source(source, index, "join", plan.in_degree["join"],
                                          False, "    ")
    namespace = _compiled(["def arrive_at_join(state, ctx):\n", *lines,
                           f"{inner}return [('join', ctx)]\n", "    return []\n"],
                          {"join": plan.rules.join})
    function: Callable[..., Any] = namespace["arrive_at_join"]
    return function


def _arrivals(form: str, plan: Any, order: tuple[str, ...], writes: dict[str, Any]
              ) -> list[Any]:
    state = InstanceState(plan, "i", LoopClock())
    root = WorkflowContext.initial({"id": 1}, "i")
    edges = {e.source: e for e in plan.nodes["join"].incoming}
    seen: list[Any] = []
    for source in order:
        ctx = root.fork()
        ctx.set(writes[source], source)
        index = edges[source].index
        try:
            if form == "function":
                ready = arrival.arrive(state, "join", index, source, ctx)
            else:
                ready = _arrival_template(plan, source, index)(state, ctx)
            seen.append([(node, out.data) for node, out in ready])
        except StepFailure as failure:
            seen.append(("StepFailure", failure.node, type(failure.error).__name__,
                         failure.context.data if failure.context is not None else None))
    return seen


@pytest.mark.parametrize("order", list(itertools.permutations("abc")))
@pytest.mark.parametrize("conflict", [False, True])
def test_an_edge_arrival_at_a_join_runs_the_same_in_both_forms(order: tuple[str, ...],
                                                                  conflict: bool) -> None:
    plan = _join_plan("error")
    writes = {"a": "x", "b": "x" if conflict else "y", "c": "z"}
    function = _arrivals("function", plan, order, writes)
    assert function == _arrivals("template", plan, order, writes)
    assert function[:2] == [[], []]  # the first arrivals wait
    if conflict:  # the join's step fails, with the context the branches had in common
        assert function[2] == ("StepFailure", "join", "MergeConflictError", {"id": 1})
    else:  # merged in edge declaration order, whatever the order of arrival
        assert function[2] == [("join", {"id": 1, "x": "a", "y": "b", "z": "c"})]
