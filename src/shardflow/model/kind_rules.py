"""Validation of the node kinds that came with litestar-workflows' shapes: gateways, waits
(timers, webhooks), sequential and conditional groups, and human steps whose form data goes
to the top level of the context.

Split from ``model/validation.py`` so each kind's rules are read in one place; that module
calls :func:`kind_problems` with the rest.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from shardflow.errors import ValidationProblem as Problem
from shardflow.model.gateways import ExclusiveGateway, ParallelGateway
from shardflow.model.groups import ConditionalGroup, Group, ParallelGroup, SequentialGroup
from shardflow.model.steps import BaseHumanStep, BaseMachineStep, BaseStep
from shardflow.model.waits import TimerStep, WebhookStep

if TYPE_CHECKING:
    from shardflow.model.definition import WorkflowDefinition

_NODE_ONLY = (ExclusiveGateway, ParallelGateway, TimerStep, WebhookStep)
_STEP_KINDS = (BaseMachineStep, BaseHumanStep, *_NODE_ONLY)


def kind_problems(defn: WorkflowDefinition) -> Iterator[Problem]:
    for node_id, node in defn.steps.items():
        if isinstance(node, BaseStep) and not isinstance(node, _STEP_KINDS):
            yield Problem(f"node {node_id!r} is a {type(node).__name__}, a BaseStep of no kind "
                          "shardflow runs; subclass BaseMachineStep or BaseHumanStep",
                          "not_a_step", [node_id])
        if isinstance(node, Group):
            yield from _group_problems(node, node_id, top=True)
        if isinstance(node, ParallelGateway | ExclusiveGateway):
            yield from _gateway_problems(defn, node_id, node)
        if isinstance(node, TimerStep) and not _is_duration(node.duration):
            yield Problem(f"timer {node_id!r}: duration must be a timedelta or a function of "
                          "the context returning one", "bad_duration", [node_id])
    yield from _top_level_form_problems(defn)


def _is_duration(value: Any) -> bool:
    return isinstance(value, timedelta) or callable(value)


def _group_problems(group: Any, where: str, top: bool) -> Iterator[Problem]:
    if isinstance(group, ConditionalGroup):
        if not callable(group.condition):
            yield Problem(f"ConditionalGroup {where!r}: condition must be a callable taking the "
                          "context", "bad_condition", [where])
        if not group.branches:
            yield Problem(f"ConditionalGroup {where!r} has no branches", "no_branches", [where])
        for key in group.branches:
            if not isinstance(key, str):
                yield Problem(f"ConditionalGroup {where!r}: branch key {key!r} is not a string",
                              "bad_branch_key", [where])
    for member in group.members:
        inner = f"{where}/{getattr(member, 'step_name', '?')}"
        if isinstance(member, _NODE_ONLY):
            kind = type(member).__name__
            yield Problem(f"{kind} {inner!r} is inside a group; a {kind} must be a node of "
                          "the graph (it decides edges or parks the instance)", "kind_in_group",
                          [inner])
        # A human step may be a direct branch of a top-level ParallelGroup only (validation.py
        # says so for nested ParallelGroups); the other groups run members in one task.
        if isinstance(member, BaseHumanStep) and isinstance(group, SequentialGroup | ConditionalGroup):
            yield Problem(f"human step {inner!r} is inside a {type(group).__name__}; make it a "
                          "node of the graph", "human_nested", [inner])
        if isinstance(member, Group):
            yield from _group_problems(member, inner, top=False)


def _gateway_problems(defn: WorkflowDefinition, node_id: str,
                      gateway: ExclusiveGateway | ParallelGateway) -> Iterator[Problem]:
    edges = [e for e in defn.edges if e.source == node_id]
    for edge in edges:
        if edge.condition is not None:
            yield Problem(f"gateway {node_id!r}: edge to {edge.target!r} has a condition; a "
                          "gateway's own rule decides its edges", "gateway_edge_condition",
                          [node_id, edge.target])
    if isinstance(gateway, ExclusiveGateway):
        if not callable(gateway.condition):
            yield Problem(f"ExclusiveGateway {node_id!r}: condition must be a callable taking "
                          "the context and returning a node id", "bad_condition", [node_id])
        return
    targets = [e.target for e in edges]
    for branch in gateway.branches:
        if branch not in targets:
            yield Problem(f"ParallelGateway {node_id!r}: branch {branch!r} has no edge from the "
                          f"gateway; add Edge({node_id!r}, {branch!r})", "gateway_branch_without_edge",
                          [node_id, branch])
    for target in targets:
        if target not in gateway.branches:
            yield Problem(f"ParallelGateway {node_id!r}: edge to {target!r} is not one of its "
                          f"branches {gateway.branches!r}", "gateway_edge_not_branch",
                          [node_id, target])


def _top_level_form_problems(defn: WorkflowDefinition) -> Iterator[Problem]:
    """Two human steps that write form data at the top level must not run concurrently:
    their fields would meet at a join and conflict. Two nodes may run concurrently unless
    one reaches the other; two branches of one ParallelGroup always may."""
    owners: list[tuple[str, str]] = []  # (node id, where)
    for node_id, node in defn.steps.items():
        if isinstance(node, BaseHumanStep) and node.form_data_at_top_level:
            owners.append((node_id, node_id))
        if isinstance(node, ParallelGroup):
            inside = [f"{node_id}/{b.step_name}" for b in node.branches
                      if isinstance(b, BaseHumanStep) and b.form_data_at_top_level]
            if len(inside) > 1:
                yield Problem(f"human steps {inside[0]!r} and {inside[1]!r} both write form data "
                              "at the top level and run in parallel; keep one under its node id "
                              "(form_data_at_top_level = False)", "top_level_form_conflict",
                              inside[:2])
            owners.extend((node_id, w) for w in inside[:1])
    if len(owners) < 2:
        return
    reach = _reachable(defn)
    for i, (a, where_a) in enumerate(owners):
        for b, where_b in owners[i + 1:]:
            if a != b and b not in reach[a] and a not in reach[b]:
                yield Problem(f"human steps {where_a!r} and {where_b!r} both write form data at "
                              "the top level and may run in parallel; keep one under its node "
                              "id (form_data_at_top_level = False)", "top_level_form_conflict",
                              [where_a, where_b])


def _reachable(defn: WorkflowDefinition) -> dict[str, set[str]]:
    successors: dict[str, list[str]] = {n: [] for n in defn.steps}
    for edge in defn.edges:
        if edge.source in successors and edge.target in successors:
            successors[edge.source].append(edge.target)
    reach: dict[str, set[str]] = {}
    for start in successors:
        seen: set[str] = set()
        stack = list(successors[start])
        while stack:
            node = stack.pop()
            if node not in seen:
                seen.add(node)
                stack.extend(successors[node])
        reach[start] = seen
    return reach
