"""InstanceState: what the interpreter and a compiled schedule share about one running instance.

Both run the same instance the same way (``engine/attempt.py`` holds the rules they apply), so
they read and write the same fields: this class names them, with their types, in one place.
A compiled schedule receives the instance's state as its first argument and touches nothing
else of it; :class:`~shardflow.engine.interpreter.Interpreter` is this state plus the methods
that walk a plan node by node.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from shardflow._clock import Clock
from shardflow.context import WorkflowContext
from shardflow.engine.parking import Parked
from shardflow.engine.rows import StepEntry
from shardflow.engine.stepstats import StepStats
from shardflow.limits.gate import Gate
from shardflow.model.plan import Plan
from shardflow.model.tasks import HumanTask

if TYPE_CHECKING:
    from shardflow.engine.scope import PathScope

Arrival = tuple[int, str, WorkflowContext]
"""A context that arrived at a join: (edge index, source node, context)."""
Ready = list[tuple[str, WorkflowContext]]
"""Nodes ready to run, each with the context it runs on, in the order they run."""


class InstanceState:
    """The state of one instance while it runs (and, parked, while it waits for people)."""

    __slots__ = ("arrivals", "clock", "gate", "history", "instance_id", "job", "on_task",
                 "parked", "plan", "remaining", "scope", "sinks", "stats", "step_log")

    def __init__(
        self,
        plan: Plan,
        instance_id: str,
        clock: Clock,
        gate: Gate | None = None,
        on_task: Callable[[HumanTask], None] | None = None,
        stats: StepStats | None = None,
    ) -> None:
        """With ``stats``, step executions are counted there and ``history`` records only
        skipped nodes (a batch worker reports statistics, not histories)."""
        self.plan = plan
        self.instance_id = instance_id
        self.clock = clock
        self.gate = gate
        self.on_task = on_task
        self.remaining: dict[str, int] | None = None
        """Unresolved incoming edges per node, once a run counts them down (an interpreted
        run, or a compiled one whose forks lead into joins); None until then, meaning the
        plan's ``in_degree`` (the usual compiled run never needs its own copy)."""
        self.arrivals: dict[str, list[Arrival]] = {}
        """Contexts waiting at a join for its other edges."""
        self.parked: dict[str, Parked] = {}
        self.sinks: dict[str, WorkflowContext] = {}
        """Node -> the context a path ended with there (merged by ``final_context``)."""
        self.history: list[StepEntry] = []
        """The step log (:data:`StepEntry` tuples; :func:`as_records` makes them records)."""
        self.stats = stats
        self.step_log: list[StepEntry] | None = None if stats is not None else self.history
        """Where step attempts are logged: ``history``, or None when ``stats`` counts them."""
        self.scope: PathScope | None = None
        """The scope holding the instance's path tasks while it runs."""
        self.job: int | None = None
        """The host's name for this run (a shard runner's job ``seq``), for a watchdog."""

    def counts(self) -> dict[str, int]:
        """``remaining``, made this instance's own copy on first use."""
        remaining = self.remaining
        if remaining is None:
            remaining = self.remaining = dict(self.plan.in_degree)
        return remaining
