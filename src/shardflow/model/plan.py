"""The compiled plan: a definition turned into flat tuples the interpreter reads per step.

Compiling once moves every lookup (edges of a node, retry policy of a step, merge rules) out
of the per-instance hot path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from shardflow.context import MergeRules
from shardflow.errors import ValidationProblem, WorkflowValidationError
from shardflow.model.gateways import ExclusiveGateway, ParallelGateway
from shardflow.model.groups import ConditionalGroup, Group, Node, ParallelGroup, RaceGroup, SequentialGroup
from shardflow.model.steps import BaseHumanStep, BaseMachineStep, BaseStep
from shardflow.model.waits import TimerStep, WebhookStep

if TYPE_CHECKING:
    from shardflow.model.definition import Condition, WorkflowDefinition


@dataclass(frozen=True, slots=True)
class EdgePlan:
    index: int
    source: str
    target: str
    condition: Condition | None


@dataclass(frozen=True, slots=True)
class NodePlan:
    """What every node's plan holds: its edges, resolved once. A plan is one of the four
    kinds below, so the interpreter's ``isinstance`` check also types the node it runs."""

    id: str
    incoming: tuple[EdgePlan, ...]
    outgoing: tuple[EdgePlan, ...]
    unconditional_single: bool
    """Exactly one outgoing edge, with no condition: the hot path needs no evaluation."""
    unconditional: bool
    """No outgoing edge has a condition: every edge is taken, without awaiting anything."""


@dataclass(frozen=True, slots=True)
class MachinePlan(NodePlan):
    step: BaseMachineStep

    @property
    def node(self) -> Node:
        return self.step


@dataclass(frozen=True, slots=True)
class HumanPlan(NodePlan):
    step: BaseHumanStep

    @property
    def node(self) -> Node:
        return self.step


@dataclass(frozen=True, slots=True)
class ParallelPlan(NodePlan):
    group: ParallelGroup

    @property
    def node(self) -> Node:
        return self.group


@dataclass(frozen=True, slots=True)
class RacePlan(NodePlan):
    group: RaceGroup

    @property
    def node(self) -> Node:
        return self.group


@dataclass(frozen=True, slots=True)
class GroupPlan(NodePlan):
    """A ``SequentialGroup`` or ``ConditionalGroup``: its members run inside the node."""

    group: SequentialGroup | ConditionalGroup

    @property
    def node(self) -> Node:
        return self.group


@dataclass(frozen=True, slots=True)
class GatewayPlan(NodePlan):
    """A gateway: no work, only its edges. A ``ParallelGateway``'s plan is ``unconditional``
    (a fork); an ``ExclusiveGateway``'s is not, its choice resolves the edges."""

    gateway: ExclusiveGateway | ParallelGateway

    @property
    def node(self) -> Node:
        return self.gateway


@dataclass(frozen=True, slots=True)
class WaitPlan(NodePlan):
    """A ``TimerStep`` or a ``WebhookStep``: the node waits, sleeping or parked."""

    step: TimerStep | WebhookStep

    @property
    def node(self) -> Node:
        return self.step


AnyNodePlan = MachinePlan | HumanPlan | ParallelPlan | RacePlan | GroupPlan | GatewayPlan | WaitPlan
"""The plan of one node, by kind."""


@dataclass(frozen=True, slots=True)
class Plan:
    name: str
    version: str
    initial: str
    nodes: dict[str, AnyNodePlan]
    in_degree: Mapping[str, int]
    """Incoming edges per node; read-only (a ``MappingProxyType``): every interpreter reads it,
    and only a run that counts edges down takes a copy of its own (``Interpreter.remaining``)."""
    rules: MergeRules
    limit_names: frozenset[str]
    rate_limit_names: frozenset[str]
    has_human: bool
    can_fork: bool = True
    """Some node has more than one outgoing edge, so paths may run concurrently. Without
    one, an instance is a single path and needs no task group of its own."""
    schedules: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)
    """Compiled schedules of this plan by variant (``engine/schedule.py``), built on use."""


def node_plan(node_id: str, node: Node, incoming: tuple[EdgePlan, ...],
              outgoing: tuple[EdgePlan, ...]) -> AnyNodePlan:
    """The plan of ``node``, of the kind the node is."""
    edges = (node_id, incoming, outgoing,
             len(outgoing) == 1 and outgoing[0].condition is None,
             all(e.condition is None for e in outgoing))
    if isinstance(node, ParallelGroup):
        return ParallelPlan(*edges, node)
    if isinstance(node, RaceGroup):
        return RacePlan(*edges, node)
    if isinstance(node, BaseHumanStep):
        return HumanPlan(*edges, node)
    if isinstance(node, SequentialGroup | ConditionalGroup):
        return GroupPlan(*edges, node)
    if isinstance(node, ExclusiveGateway):  # its choice, not conditions, resolves the edges
        return GatewayPlan(node_id, incoming, outgoing, False, False, node)
    if isinstance(node, ParallelGateway):
        return GatewayPlan(*edges, node)
    if isinstance(node, TimerStep | WebhookStep):
        return WaitPlan(*edges, node)
    if not isinstance(node, BaseMachineStep):  # validation reports it first (not_a_step)
        raise TypeError(f"node {node_id!r} is a {type(node).__name__}, of no kind shardflow runs")
    return MachinePlan(*edges, node)


def iter_steps(node: Any) -> list[BaseStep]:
    """Every step inside a node, callbacks included."""
    if isinstance(node, Group):
        found = [s for b in node.members for s in iter_steps(b)]
        if isinstance(node, ParallelGroup) and node.callback is not None:
            found.append(node.callback)
        return found
    return [node] if isinstance(node, BaseStep) else []


def step_limits(step: BaseStep) -> tuple[str, ...]:
    """The concurrency limit names of a step, sorted so every step acquires in one order."""
    if step.limit is None:
        return ()
    names = (step.limit,) if isinstance(step.limit, str) else tuple(step.limit)
    return tuple(sorted(set(names)))


def compile_plan(defn: WorkflowDefinition) -> Plan:
    """The plan of ``defn``, which has been validated. Its edges hold their predicates: a
    string condition's compiled expression, called as any callable condition is."""
    edges = [EdgePlan(i, e.source, e.target, e.predicate) for i, e in enumerate(defn.edges)]
    nodes: dict[str, AnyNodePlan] = {}
    limits: set[str] = set()
    rates: set[str] = set()
    has_human = False
    for node_id, node in defn.steps.items():
        outgoing = tuple(e for e in edges if e.source == node_id)
        nodes[node_id] = node_plan(node_id, node,
                                   tuple(e for e in edges if e.target == node_id), outgoing)
        for step in iter_steps(node):
            limits.update(step_limits(step))
            if step.rate_limit:
                rates.add(step.rate_limit)
            has_human = has_human or isinstance(step, BaseHumanStep | TimerStep | WebhookStep)
    return Plan(
        name=defn.name,
        version=defn.version,
        initial=defn.initial_step,
        nodes=nodes,
        in_degree=MappingProxyType({n: len(p.incoming) for n, p in nodes.items()}),
        rules=MergeRules(defn.merge_policy, defn.reducers),
        limit_names=frozenset(limits),
        rate_limit_names=frozenset(rates),
        has_human=has_human,
        can_fork=any(len(p.outgoing) > 1 for p in nodes.values()),
    )


def check_limits(plan: Plan, limits: Mapping[str, int], rate_limits: Mapping[str, str]) -> None:
    """Fail, naming the step and the limit, if a step uses a limit the run does not size."""
    problems: list[ValidationProblem] = []
    for node_id, planned in plan.nodes.items():
        for step in iter_steps(planned.node):
            where = f"{node_id}/{step.step_name}" if step is not planned.node else node_id
            for name in step_limits(step):
                if name not in limits:
                    problems.append(ValidationProblem(
                        f"step {where!r} declares limit {name!r}, but the run sets no size for it "
                        f"(add {name} = N under [limits] or --limit)", "unsized_limit", [where, name]))
            if step.rate_limit and step.rate_limit not in rate_limits:
                problems.append(ValidationProblem(
                    f"step {where!r} declares rate_limit {step.rate_limit!r}, but the run sets no "
                    "rate for it (add it under [rate_limits] or --rate-limit)", "unsized_rate_limit",
                    [where, step.rate_limit]))
    if problems:
        raise WorkflowValidationError(plan.name, problems)
