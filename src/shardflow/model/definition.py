"""Edges and workflow definitions: the declarative graph users write."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shardflow.errors import ValidationProblem, WorkflowValidationError
from shardflow.model.groups import Node

if TYPE_CHECKING:
    from shardflow.context import Reducer, WorkflowContext
    from shardflow.model.plan import Plan

Condition = Callable[["WorkflowContext"], "bool | Awaitable[bool]"]


@dataclass(frozen=True, slots=True)
class Edge:
    """A transition from ``source`` to ``target``, taken when ``condition(context)`` is true
    (no condition: always). A condition may be sync or async; it must be a callable."""

    source: str
    target: str
    condition: Condition | None = None


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

    def successors(self, node: str) -> Iterable[str]:
        return (e.target for e in self.edges if e.source == node)

    def fingerprint(self) -> dict[str, Any]:
        """What identifies this definition in a run record (name, version, node ids)."""
        return {"name": self.name, "version": self.version, "nodes": sorted(self.steps)}
