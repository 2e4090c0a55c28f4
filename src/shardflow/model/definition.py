"""Edges and workflow definitions: the declarative graph users write."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shardflow.errors import InvalidTransitionError, ValidationProblem, WorkflowValidationError
from shardflow.model.conditions import compile_condition
from shardflow.model.groups import Group, Node
from shardflow.model.steps import BaseStep

if TYPE_CHECKING:
    from shardflow.context import Reducer, WorkflowContext
    from shardflow.model.plan import Plan

Condition = Callable[["WorkflowContext"], "bool | Awaitable[bool]"]
NodeRef = str | type[BaseStep] | BaseStep | Group
"""How an edge names a node: its id, or (as litestar-workflows allows) the step class or
step whose ``name`` is that id."""


@dataclass(frozen=True, slots=True, init=False)
class Edge:
    """A transition from ``source`` to ``target``, taken when ``condition(context)`` is true
    (no condition: always). A condition is a callable, sync or async, or a string: an
    expression over the context (``"approved"``, ``"order.total > 100"``; the grammar is in
    :mod:`shardflow.model.conditions`), checked and compiled here, once, so a bad one fails
    where the edge is written (:class:`InvalidConditionError`).

    ``source`` and ``target`` may be given as step classes or steps: they are stored as the
    node ids their ``name`` says. ``condition`` is what was given; ``predicate`` is what
    every run calls (the callable itself, or the compiled expression)."""

    source: str
    target: str
    condition: Condition | str | None
    predicate: Condition | None = field(init=False, compare=False, repr=False)

    def __init__(self, source: NodeRef, target: NodeRef,
                 condition: Condition | str | None = None) -> None:
        object.__setattr__(self, "source", node_id(source))
        object.__setattr__(self, "target", node_id(target))
        object.__setattr__(self, "condition", condition)
        object.__setattr__(self, "predicate", compile_condition(condition, self.source, self.target)
                           if isinstance(condition, str) else condition)

    def __reduce__(self) -> tuple[type[Edge], tuple[str, str, Condition | str | None]]:
        """A copy or a pickle is made from the arguments: a string condition is compiled
        again (its compiled function cannot be pickled)."""
        return (Edge, (self.source, self.target, self.condition))

    def get_source_name(self) -> str:
        return self.source

    def get_target_name(self) -> str:
        return self.target

    def evaluate_condition(self, context: WorkflowContext) -> bool:
        """Whether this edge is taken for ``context``, as the engine decides it (the truth of
        the predicate's result), outside a run: for graph questions and tests. An async
        condition cannot be answered here (:class:`InvalidTransitionError`)."""
        predicate = self.predicate
        if predicate is None:
            return True
        result = predicate(context)
        if inspect.isawaitable(result):
            if inspect.iscoroutine(result):
                result.close()  # never awaited: no "coroutine was never awaited" warning
            raise InvalidTransitionError(self.source, self.target,
                                         "the condition is async; only a run evaluates it")
        return bool(result)


def node_id(ref: NodeRef) -> str:
    """The node id an edge end names: a string as it is, a step class or step by its name
    (a class without one by its class name), a group by its name."""
    if isinstance(ref, str):
        return ref
    if isinstance(ref, type) and issubclass(ref, BaseStep):
        return ref.name or ref.__name__
    if isinstance(ref, BaseStep | Group):
        return ref.step_name
    raise TypeError(f"an edge end must be a node id (str), a step class or a step, "
                    f"not {type(ref).__name__}: {ref!r}")


@dataclass(eq=False)
class WorkflowDefinition:
    """A named, versioned graph of steps.

    ``steps`` maps node ids to steps or groups; ``edges`` connect node ids; the instance starts
    at ``initial_step``. ``merge_policy`` (``"error"`` or ``"last_wins"``) and ``reducers``
    (key → ``"append" | "extend" | "sum" | "max" | "min" | "merge"`` or a callable) decide how
    a join combines the writes of parallel branches.
    """

    name: str
    steps: Mapping[str, Node]
    edges: list[Edge]
    initial_step: str
    terminal_steps: set[str] = field(default_factory=set)
    version: str = "1.0.0"
    description: str = ""
    merge_policy: str = "error"
    reducers: Mapping[str, str | Reducer] = field(default_factory=dict)
    _plan: Plan | None = field(default=None, init=False, repr=False)
    defined_in: str = field(default="", init=False, repr=False)
    """The module that created this definition: how worker processes find it again."""

    def __post_init__(self) -> None:
        frame = sys._getframe(2)  # __post_init__ <- generated __init__ <- the defining code
        self.defined_in = str(frame.f_globals.get("__name__", ""))

    def validate(self) -> list[ValidationProblem]:
        """Every problem of this definition: sentences naming the nodes involved, which also
        carry the problem's ``kind`` and those ``names``."""
        from shardflow.model.validation import find_problems

        return find_problems(self)

    def check(self) -> None:
        """Raise :class:`WorkflowValidationError` listing every problem, if there are any."""
        problems = self.validate()
        if problems:
            raise WorkflowValidationError(self.name, problems)

    def __getstate__(self) -> dict[str, Any]:
        """A copy or a pickle leaves the compiled plan behind (it is a cache, holding
        generated code and read-only tables): the copy compiles its own on first use."""
        state = dict(self.__dict__)
        state["_plan"] = None
        return state

    @property
    def plan(self) -> Plan:
        """The compiled, validated execution plan (built once)."""
        if self._plan is None:
            from shardflow.model.plan import compile_plan

            self.check()
            self._plan = compile_plan(self)
        return self._plan

    def to_mermaid(self) -> str:
        """The graph as a Mermaid flowchart; groups are drawn as subgraphs of their branches."""
        from shardflow.model.render import to_mermaid

        return to_mermaid(self)

    def to_dot(self) -> str:
        """The graph in Graphviz DOT."""
        from shardflow.model.render import to_dot

        return to_dot(self)

    def to_mermaid_with_state(self, current_step: str | None = None,
                              completed_steps: Iterable[str] | None = None,
                              failed_steps: Iterable[str] | None = None) -> str:
        """:meth:`to_mermaid` with the state of an instance drawn on it: completed, failed
        and current nodes (by node id) in classes of those names."""
        from shardflow.model.render import to_mermaid

        state = dict.fromkeys(completed_steps or (), "completed")
        state.update(dict.fromkeys(failed_steps or (), "failed"))
        if current_step is not None:
            state[current_step] = "current"
        return to_mermaid(self, state)

    def successors(self, node: str) -> Iterable[str]:
        return (e.target for e in self.edges if e.source == node)

    def get_next_steps(self, current_step: str, context: WorkflowContext) -> list[str]:
        """The targets of the edges out of ``current_step`` taken for ``context``
        (:meth:`Edge.evaluate_condition`)."""
        return [e.target for e in self.edges
                if e.source == current_step and e.evaluate_condition(context)]

    def fingerprint(self) -> dict[str, Any]:
        """What identifies this definition in a run record (name, version, node ids)."""
        return {"name": self.name, "version": self.version, "nodes": sorted(self.steps)}
