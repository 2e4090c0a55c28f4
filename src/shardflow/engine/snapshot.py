"""Snapshots of a waiting instance: everything needed to continue it in another process.

A parked instance is its interpreter state (edges still to resolve, contexts waiting at
joins, parked nodes with their finished branches, contexts that reached the end) plus the
contexts those refer to. Contexts form a tree (forks point to their parent, which joins need
to find common ancestors), so the snapshot stores each context once, as its parent and its
own writes, and rebuilds the same tree, sharing and all. Everything is JSON.

:meth:`Interpreter.to_snapshot` and :meth:`Interpreter.from_snapshot` are the entry points;
this module only knows the format. Keys other than the ones below (a host may store its own
next to them) are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shardflow.context import WorkflowContext
from shardflow.engine.parking import Parked
from shardflow.model.plan import Plan

FORMAT = 1

Arrivals = dict[str, list[tuple[int, str, WorkflowContext]]]


def _parent(ctx: WorkflowContext) -> WorkflowContext | None:
    chain = ctx.ancestors()
    next(chain)  # the context itself
    return next(chain, None)


class _Contexts:
    def __init__(self) -> None:
        self.ids: dict[int, int] = {}
        self.table: list[dict[str, Any]] = []

    def ref(self, ctx: WorkflowContext | None) -> int | None:
        if ctx is None:
            return None
        known = self.ids.get(id(ctx))
        if known is not None:
            return known
        parent = self.ref(_parent(ctx))
        entry: dict[str, Any] = {"parent": parent, "writes": ctx.writes()}
        if parent is None:
            entry["data"] = ctx.data
        self.ids[id(ctx)] = len(self.table)
        self.table.append(entry)
        return self.ids[id(ctx)]


def encode(plan: Plan, instance_id: str, remaining: dict[str, int], arrivals: Arrivals,
           sinks: dict[str, WorkflowContext], parked: dict[str, Parked]) -> dict[str, Any]:
    """The JSON snapshot of a waiting instance."""
    contexts = _Contexts()
    return {
        "format": FORMAT,
        "workflow": plan.name,
        "version": plan.version,
        "instance_id": instance_id,
        "remaining": remaining,
        "arrivals": {node: [[i, src, contexts.ref(c)] for i, src, c in items]
                     for node, items in arrivals.items()},
        "sinks": {node: contexts.ref(c) for node, c in sinks.items()},
        "parked": {node: {
            "base": contexts.ref(p.base),
            "branches": [contexts.ref(c) for c in p.branches],
            "errors": {name: [type(e).__name__, str(e)] for name, e in p.errors.items()},
            "tasks": p.tasks,
            "data": p.data,
        } for node, p in parked.items()},
        "contexts": contexts.table,
    }


@dataclass(frozen=True, slots=True)
class Decoded:
    """The interpreter state a snapshot holds."""

    instance_id: str
    remaining: dict[str, int]
    arrivals: Arrivals
    sinks: dict[str, WorkflowContext]
    parked: dict[str, Parked]


def _error(type_name: str, message: str) -> BaseException:
    """A stand-in for a tolerated branch failure: same type name and message."""
    error: BaseException = type(type_name, (Exception,), {})(message)
    return error


def decode(state: dict[str, Any]) -> Decoded:
    """The state :func:`encode` recorded; ``ValueError`` for an unknown format."""
    if state.get("format") != FORMAT:
        raise ValueError(f"unknown snapshot format {state.get('format')!r}")
    instance_id = str(state["instance_id"])
    built: list[WorkflowContext] = []
    for entry in state["contexts"]:
        if entry["parent"] is None:
            ctx = WorkflowContext.restored(entry["data"], entry["writes"],
                                           instance_id=instance_id)
        else:
            ctx = built[entry["parent"]].child_with(entry["writes"])
        built.append(ctx)

    def get(ref: int | None) -> WorkflowContext | None:
        return None if ref is None else built[ref]

    parked: dict[str, Parked] = {}
    for node, p in state["parked"].items():
        base = get(p["base"])
        assert base is not None
        parked[node] = Parked(
            node=node, base=base, branches=[get(r) for r in p["branches"]],
            errors={name: _error(t, m) for name, (t, m) in p["errors"].items()},
            tasks={str(k): int(v) for k, v in p["tasks"].items()},
            data=dict(p["data"]),
        )
    return Decoded(
        instance_id=instance_id,
        remaining={k: int(v) for k, v in state["remaining"].items()},
        arrivals={node: [(int(i), str(src), built[ref]) for i, src, ref in items]
                  for node, items in state["arrivals"].items()},
        sinks={node: built[ref] for node, ref in state["sinks"].items()},
        parked=parked,
    )

