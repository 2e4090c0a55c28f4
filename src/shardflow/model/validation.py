"""Definition validation: find every problem at once, each named by its nodes.

A definition is checked when it is registered or compiled, so a bad graph never reaches a run.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from shardflow.model.groups import ParallelGroup, RaceGroup
from shardflow.model.steps import BaseHumanStep, BaseMachineStep, BaseStep

if TYPE_CHECKING:
    from shardflow.model.definition import WorkflowDefinition

_REDUCER_NAMES = {"append", "extend", "sum", "max", "min", "merge"}


def find_problems(defn: WorkflowDefinition) -> list[str]:
    problems: list[str] = []
    nodes = defn.steps
    if not defn.name:
        problems.append("the workflow has no name")
    if not nodes:
        problems.append("the workflow has no steps")
    if defn.initial_step not in nodes:
        problems.append(f"initial step {defn.initial_step!r} is not one of the steps")
    problems.extend(_node_problems(defn))
    problems.extend(_edge_problems(defn))
    for terminal in sorted(defn.terminal_steps):
        if terminal not in nodes:
            problems.append(f"terminal step {terminal!r} is not one of the steps")
        elif any(True for _ in defn.successors(terminal)):
            problems.append(f"terminal step {terminal!r} has outgoing edges; a terminal must be a sink")
    if not problems:
        cycle = _find_cycle(defn)
        if cycle:
            problems.append("cycle: " + " -> ".join(cycle))
        else:
            problems.extend(_reachability_problems(defn))
    if defn.merge_policy not in ("error", "last_wins"):
        problems.append(f"merge_policy {defn.merge_policy!r} is not 'error' or 'last_wins'")
    for key, reducer in defn.reducers.items():
        if isinstance(reducer, str) and reducer not in _REDUCER_NAMES:
            problems.append(
                f"reducer {reducer!r} for key {key!r} is unknown; use one of "
                f"{sorted(_REDUCER_NAMES)} or a callable"
            )
        elif not isinstance(reducer, str) and not callable(reducer):
            problems.append(f"reducer for key {key!r} is neither a name nor a callable")
    return problems


def _walk(node: Any, where: str) -> Iterator[tuple[Any, str]]:
    """Every step and group inside ``node`` (itself included), with a readable location."""
    yield node, where
    if isinstance(node, ParallelGroup | RaceGroup):
        for branch in node.branches:
            yield from _walk(branch, f"{where}/{getattr(branch, 'step_name', '?')}")
        if isinstance(node, ParallelGroup) and node.callback is not None:
            yield node.callback, f"{where}/callback"


def _node_problems(defn: WorkflowDefinition) -> Iterator[str]:
    seen: dict[int, str] = {}
    for node_id, node in defn.steps.items():
        yield from _misplaced_humans(node, node_id)
        for item, where in _walk(node, node_id):
            if id(item) in seen:
                yield (
                    f"the same {type(item).__name__} instance is used for {seen[id(item)]!r} and "
                    f"{where!r}; create one instance per node"
                )
                continue
            seen[id(item)] = where
            yield from _item_problems(item, where)


def _misplaced_humans(node: Any, node_id: str) -> Iterator[str]:
    """Human steps may be nodes or direct branches of a top-level ParallelGroup: that is
    where the interpreter can park them and persist their state."""
    if not isinstance(node, ParallelGroup):
        return
    for branch in node.branches:
        for item, where in _walk(branch, f"{node_id}/{getattr(branch, 'step_name', '?')}"):
            if isinstance(item, BaseHumanStep) and item is not branch:
                yield (f"human step {where!r} is nested in an inner group; put human steps "
                       "directly in a top-level ParallelGroup or make them nodes")
    if node.callback is not None and isinstance(node.callback, BaseHumanStep):
        yield f"ParallelGroup {node_id!r}: a human step cannot be the callback"


def _item_problems(item: Any, where: str) -> Iterator[str]:
    if isinstance(item, ParallelGroup | RaceGroup):
        kind = type(item).__name__
        if not item.branches:
            yield f"{kind} {where!r} has no branches"
        names = [getattr(b, "step_name", "") for b in item.branches]
        for name in sorted({n for n in names if names.count(n) > 1}):
            yield f"{kind} {where!r} has two branches named {name!r}; branch names must differ"
        if isinstance(item, RaceGroup):
            for branch in item.branches:
                if isinstance(branch, BaseHumanStep):
                    yield f"RaceGroup {where!r} contains human step {branch.step_name!r}; races take machine steps"
        if isinstance(item, ParallelGroup):
            if item.max_concurrent is not None and item.max_concurrent < 1:
                yield f"ParallelGroup {where!r}: max_concurrent must be at least 1"
            if item.min_success is not None and not 0 <= item.min_success <= len(item.branches):
                yield f"ParallelGroup {where!r}: min_success must be between 0 and {len(item.branches)}"
            if item.callback is not None and not isinstance(item.callback, BaseMachineStep):
                yield f"ParallelGroup {where!r}: callback must be a machine step"
        return
    if not isinstance(item, BaseStep):
        yield (
            f"node {where!r} is a {type(item).__name__}, not a step; use an instance of a "
            "BaseMachineStep/BaseHumanStep subclass, a ParallelGroup or a RaceGroup"
        )
        return
    if isinstance(item, BaseMachineStep):
        execute = getattr(item, "execute", None)
        if not inspect.iscoroutinefunction(execute):
            yield f"step {where!r}: execute must be an 'async def' method"
    if item.timeout_seconds is not None and item.timeout_seconds <= 0:
        yield f"step {where!r}: timeout_seconds must be positive"
    if item.retries < 0:
        yield f"step {where!r}: retries must not be negative"
    if isinstance(item, BaseHumanStep) and item.form_schema is not None:
        yield from _schema_problems(item.form_schema, where)


def _schema_problems(schema: Any, where: str) -> Iterator[str]:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        yield f"human step {where!r}: form_schema is not a valid JSON Schema: {exc.message}"


def _edge_problems(defn: WorkflowDefinition) -> Iterator[str]:
    for index, edge in enumerate(defn.edges):
        label = f"edge #{index} {edge.source!r} -> {edge.target!r}"
        if edge.source not in defn.steps:
            yield f"{label}: unknown source node {edge.source!r}"
        if edge.target not in defn.steps:
            yield f"{label}: unknown target node {edge.target!r}"
        if isinstance(edge.condition, str):
            yield (
                f"{label}: condition is the string {edge.condition!r}; string conditions are "
                "not evaluated, pass a callable such as lambda ctx: ctx.get('approved')"
            )
        elif edge.condition is not None and not callable(edge.condition):
            yield f"{label}: condition must be a callable taking the context"
    pairs = [(e.source, e.target) for e in defn.edges]
    for pair in sorted({p for p in pairs if pairs.count(p) > 1}):
        yield f"edge {pair[0]!r} -> {pair[1]!r} is declared twice"


def _find_cycle(defn: WorkflowDefinition) -> list[str]:
    adjacency: dict[str, list[str]] = {n: [] for n in defn.steps}
    for edge in defn.edges:
        adjacency[edge.source].append(edge.target)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for nxt in adjacency[node]:
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return []

    for start in defn.steps:
        if start not in state:
            cycle = visit(start)
            if cycle:
                return cycle
    return []


def _reachability_problems(defn: WorkflowDefinition) -> Iterator[str]:
    reached = {defn.initial_step}
    frontier = [defn.initial_step]
    while frontier:
        for nxt in defn.successors(frontier.pop()):
            if nxt not in reached:
                reached.add(nxt)
                frontier.append(nxt)
    for node in defn.steps:
        if node not in reached:
            yield f"node {node!r} is unreachable from initial step {defn.initial_step!r}"
