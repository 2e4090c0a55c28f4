"""Definition validation: find every problem at once, each named by its nodes.

A definition is checked when it is registered or compiled, so a bad graph never reaches a run.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from shardflow._text import did_you_mean
from shardflow.errors import ValidationProblem as Problem
from shardflow.jsonvalue import problem, render_path
from shardflow.model.graph import WorkflowGraph
from shardflow.model.groups import ConditionalGroup, Group, ParallelGroup, RaceGroup, SequentialGroup
from shardflow.model.kind_rules import kind_problems
from shardflow.model.steps import BaseHumanStep, BaseMachineStep, BaseStep

if TYPE_CHECKING:
    from shardflow.model.definition import WorkflowDefinition

_REDUCER_NAMES = {"append", "extend", "sum", "max", "min", "merge"}


def find_problems(defn: WorkflowDefinition) -> list[Problem]:
    """Every problem of ``defn``: each a sentence that also carries its ``kind`` and ``names``."""
    problems: list[Problem] = []
    nodes = defn.steps
    if not defn.name:
        problems.append(Problem("the workflow has no name", "no_name"))
    if not nodes:
        problems.append(Problem("the workflow has no steps", "no_steps"))
    if defn.initial_step not in nodes:
        problems.append(Problem(f"Initial step {defn.initial_step!r} not found in steps"
                                + did_you_mean(defn.initial_step, nodes),
                                "unknown_initial_step", [defn.initial_step]))
    problems.extend(_node_problems(defn))
    problems.extend(_edge_problems(defn))
    problems.extend(kind_problems(defn))
    for terminal in sorted(defn.terminal_steps):
        if terminal not in nodes:
            problems.append(Problem(f"Terminal step {terminal!r} not found in steps"
                                    + did_you_mean(terminal, nodes),
                                    "unknown_terminal", [terminal]))
        elif any(True for _ in defn.successors(terminal)):
            problems.append(Problem(f"terminal step {terminal!r} has outgoing edges; a terminal "
                                    "must be a sink", "terminal_not_sink", [terminal]))
    # The graph checks look at the edges between known nodes only, so they still find what
    # they can when other problems exist: every problem is listed at once.
    cycle = _find_cycle(defn)
    if cycle:
        problems.append(Problem("cycle: " + " -> ".join(cycle), "cycle", cycle))
    if defn.initial_step in nodes:
        problems.extend(_reachability_problems(defn))
    if defn.merge_policy not in ("error", "last_wins"):
        problems.append(Problem(f"merge_policy {defn.merge_policy!r} is not 'error' or 'last_wins'",
                                "bad_merge_policy", [defn.merge_policy]))
    for key, reducer in defn.reducers.items():
        if isinstance(reducer, str) and reducer not in _REDUCER_NAMES:
            problems.append(Problem(
                f"reducer {reducer!r} for key {key!r} is unknown; use one of "
                f"{sorted(_REDUCER_NAMES)} or a callable", "unknown_reducer", [key]))
        elif not isinstance(reducer, str) and not callable(reducer):
            problems.append(Problem(f"reducer for key {key!r} is neither a name nor a callable",
                                    "bad_reducer", [key]))
    return problems


def _walk(node: Any, where: str) -> Iterator[tuple[Any, str]]:
    """Every step and group inside ``node`` (itself included), with a readable location."""
    yield node, where
    if isinstance(node, Group):
        for branch in node.members:
            yield from _walk(branch, f"{where}/{getattr(branch, 'step_name', '?')}")
        if isinstance(node, ParallelGroup) and node.callback is not None:
            yield node.callback, f"{where}/callback"


def _node_problems(defn: WorkflowDefinition) -> Iterator[Problem]:
    seen: dict[int, str] = {}
    for node_id, node in defn.steps.items():
        yield from _misplaced_humans(node, node_id)
        for item, where in _walk(node, node_id):
            if id(item) in seen:
                yield Problem(
                    f"the same {type(item).__name__} instance is used for {seen[id(item)]!r} and "
                    f"{where!r}; create one instance per node", "reused_step", [seen[id(item)], where])
                continue
            seen[id(item)] = where
            yield from _item_problems(item, where)


def _misplaced_humans(node: Any, node_id: str) -> Iterator[Problem]:
    """Human steps may be nodes or direct branches of a top-level ParallelGroup: that is
    where the interpreter can park them and persist their state."""
    if not isinstance(node, ParallelGroup):
        return
    for branch in node.branches:
        for item, where in _walk(branch, f"{node_id}/{getattr(branch, 'step_name', '?')}"):
            if isinstance(item, BaseHumanStep) and item is not branch:
                yield Problem(f"human step {where!r} is nested in an inner group; put human steps "
                              "directly in a top-level ParallelGroup or make them nodes",
                              "human_nested", [where])


def _item_problems(item: Any, where: str) -> Iterator[Problem]:
    if isinstance(item, ConditionalGroup):
        return  # model/kind_rules.py
    if isinstance(item, ParallelGroup | RaceGroup | SequentialGroup):
        kind = type(item).__name__
        if not item.branches:
            yield Problem(f"{kind} {where!r} has no branches", "no_branches", [where])
        names = [getattr(b, "step_name", "") for b in item.branches]
        for name in sorted({n for n in names if names.count(n) > 1}):
            yield Problem(f"{kind} {where!r} has two branches named {name!r}; branch names must differ",
                          "duplicate_branch", [where, name])
        if isinstance(item, RaceGroup):
            for branch in item.branches:
                if isinstance(branch, BaseHumanStep):
                    yield Problem(f"RaceGroup {where!r} contains human step {branch.step_name!r}; "
                                  "races take machine steps", "human_in_race", [where, branch.step_name])
        if isinstance(item, ParallelGroup):
            if item.max_concurrent is not None and item.max_concurrent < 1:
                yield Problem(f"ParallelGroup {where!r}: max_concurrent must be at least 1",
                              "bad_max_concurrent", [where])
            if item.min_success is not None and not 0 <= item.min_success <= len(item.branches):
                yield Problem(f"ParallelGroup {where!r}: min_success must be between 0 and "
                              f"{len(item.branches)}", "bad_min_success", [where])
            if item.callback is not None and not isinstance(item.callback, BaseMachineStep):
                yield Problem(f"ParallelGroup {where!r}: callback must be a machine step (not a "
                              f"{type(item.callback).__name__})", "bad_callback", [where])
        return
    if not isinstance(item, BaseStep):
        yield Problem(
            f"node {where!r} is a {type(item).__name__}, not a step; use an instance of a "
            "BaseMachineStep/BaseHumanStep subclass, a ParallelGroup or a RaceGroup",
            "not_a_step", [where])
        return
    if isinstance(item, BaseMachineStep):
        execute = getattr(item, "execute", None)
        if not inspect.iscoroutinefunction(execute):
            yield Problem(f"step {where!r}: execute must be an 'async def' method",
                          "execute_not_async", [where])
    if item.timeout_seconds is not None and item.timeout_seconds <= 0:
        yield Problem(f"step {where!r}: timeout_seconds must be positive", "bad_timeout", [where])
    if item.retries < 0:
        yield Problem(f"step {where!r}: retries must not be negative", "bad_retries", [where])
    if isinstance(item, BaseHumanStep) and item.form_schema is not None:
        yield from _schema_problems(item.form_schema, where)
    if isinstance(item, BaseHumanStep) and item.display is not None:
        display = item.display
        if not isinstance(display, dict) or not all(
                isinstance(k, str) and isinstance(v, str) and v for k, v in display.items()):
            yield Problem(f"human step {where!r}: display must map labels to context paths "
                          f"(str to non-empty str, like {{'Amount': 'order.total'}}), not "
                          f"{display!r}", "bad_display", [where])


def _schema_problems(schema: Any, where: str) -> Iterator[Problem]:
    """A form schema is JSON (it travels in task records and the task store) and a valid
    JSON Schema (Draft 2020-12, what form data is validated with): every violation of the
    meta-schema is listed, each with its place in the schema."""
    found = problem(schema)
    if found is not None:
        yield Problem(f"human step {where!r}: form_schema is not JSON: it holds a "
                      f"{found.describe()}", "form_schema_not_json", [where])
        return  # the meta-schema says nothing useful about a value that is not JSON
    from jsonschema import Draft202012Validator
    from jsonschema.validators import validator_for

    # What Draft202012Validator.check_schema does, but listing every error, not the first.
    meta = validator_for(Draft202012Validator.META_SCHEMA, default=Draft202012Validator)
    checker = meta(Draft202012Validator.META_SCHEMA, format_checker=meta.FORMAT_CHECKER)
    errors = sorted(checker.iter_errors(schema), key=lambda e: [str(p) for p in e.absolute_path])
    for error in errors:
        place = render_path(tuple(error.absolute_path))
        at = f" at {place}" if place else ""
        yield Problem(f"human step {where!r}: form_schema is not a valid JSON Schema{at}: "
                      f"{error.message}", "bad_form_schema", [where])
    for path, ref in _outside_refs(schema, ()):
        yield Problem(f"human step {where!r}: form_schema at {render_path(path)} refers to "
                      f"{ref!r}, outside the schema; only local references ('#/$defs/...') "
                      "are resolved (nothing is fetched)", "remote_ref", [where])


def _outside_refs(schema: Any, path: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every ``$ref``/``$dynamicRef`` of ``schema`` that does not point inside it."""
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key in ("$ref", "$dynamicRef") and isinstance(value, str):
                if not value.startswith("#"):
                    yield (*path, key), value
            else:
                yield from _outside_refs(value, (*path, key))
    elif isinstance(schema, list):
        for i, value in enumerate(schema):
            yield from _outside_refs(value, (*path, i))


def _edge_problems(defn: WorkflowDefinition) -> Iterator[Problem]:
    for index, edge in enumerate(defn.edges):
        label = f"Edge #{index} {edge.source!r} -> {edge.target!r}"
        if edge.source not in defn.steps:
            yield Problem(f"{label}: source step {edge.source!r} not found in steps"
                          + did_you_mean(edge.source, defn.steps), "unknown_node", [edge.source])
        if edge.target not in defn.steps:
            yield Problem(f"{label}: target step {edge.target!r} not found in steps"
                          + did_you_mean(edge.target, defn.steps), "unknown_node", [edge.target])
        if edge.condition is not None and not callable(edge.condition) \
                and not isinstance(edge.condition, str):
            yield Problem(f"{label}: condition must be a callable taking the context or a "
                          "string expression",
                          "bad_condition", [edge.source, edge.target])
    pairs = [(e.source, e.target) for e in defn.edges]
    for pair in sorted({p for p in pairs if pairs.count(p) > 1}):
        yield Problem(f"edge {pair[0]!r} -> {pair[1]!r} is declared twice", "duplicate_edge", pair)


def _find_cycle(defn: WorkflowDefinition) -> list[str]:
    adjacency: dict[str, list[str]] = {n: [] for n in defn.steps}
    for edge in defn.edges:
        if edge.source in adjacency and edge.target in adjacency:
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


def _reachability_problems(defn: WorkflowDefinition) -> Iterator[Problem]:
    """A node no path from the initial step reaches never runs. A node listed in
    ``terminal_steps`` is exempt, as in litestar-workflows: a terminal is a sink (else
    ``terminal_not_sink``), so no edge leaves it and no join waits on it; the run simply
    never reaches it."""
    reached = WorkflowGraph(defn).depths()
    for node in defn.steps:
        if node not in reached and node not in defn.terminal_steps:
            yield Problem(f"Step {node!r} is unreachable from the initial step "
                          f"{defn.initial_step!r}", "unreachable", [node])

