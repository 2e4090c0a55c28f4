"""The edge arrival: what happens when a node of a plan finishes, each rule written here.

Its two clients are those of the step attempt (``engine/attempt.py``): the interpreter calls
the function forms, the schedule emitter (``engine/schedule.py``) writes out the template form
(:func:`arrival_source`). ``tests/engine/test_attempt.py`` runs both forms on the same cases.

A node runs once every incoming edge is resolved (taken or not); a context arriving at a join
waits there until the last edge resolves, and the contexts that arrived are merged in edge
declaration order (a merge failure fails the join's step). A node none of whose edges was
taken is skipped, and the skip propagates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

from shardflow.context import WorkflowContext, common_ancestor
from shardflow.engine.attempt import StepFailure, now
from shardflow.model.plan import EdgePlan

if TYPE_CHECKING:
    from shardflow.engine.state import Arrival, InstanceState, Ready


# -- the edge arrival: function form ----------------------------------------------------------
def arrive(state: InstanceState, target: str, index: int, source: str,
           ctx: WorkflowContext | None) -> Ready:
    """Resolve edge ``index`` (``source`` -> ``target``): taken with ``ctx``, or not taken
    (``ctx`` None). Returns ``target`` with the context it runs on if this was its last
    unresolved edge (merged, when several arrived), what skipping it makes ready if no edge
    was taken, else nothing."""
    remaining = state.remaining
    if remaining is None:
        remaining = state.counts()
    left = remaining[target] - 1
    remaining[target] = left
    arrivals = state.arrivals
    if ctx is not None:
        if left == 0 and target not in arrivals:
            return [(target, ctx)]
        arrivals.setdefault(target, []).append((index, source, ctx))
    if left > 0:
        return []
    arrived = arrivals.pop(target, None)
    if not arrived:
        return skip(state, target)
    if len(arrived) == 1:
        return [(target, arrived[0][2])]
    return [(target, merged(state, target, arrived))]


def fork(state: InstanceState, outgoing: tuple[EdgePlan, ...], out: WorkflowContext) -> Ready:
    """Every edge of ``outgoing`` taken from ``out`` (none has a condition): one fork of the
    context per edge when there are several, each arriving in edge order."""
    if len(outgoing) == 1:
        edge = outgoing[0]
        return arrive(state, edge.target, edge.index, edge.source, out)
    ready: Ready = []
    for edge in outgoing:
        ready.extend(arrive(state, edge.target, edge.index, edge.source, out.fork()))
    return ready


def skip(state: InstanceState, node: str) -> Ready:
    """Skip ``node`` (no incoming edge taken): log it, and resolve its edges as not taken."""
    started = now()
    state.history.append((node, "skipped", 0, started, started, None))
    ready: Ready = []
    for edge in state.plan.nodes[node].outgoing:
        ready.extend(arrive(state, edge.target, edge.index, node, None))
    return ready


def refused(state: InstanceState, node: str, ctx: WorkflowContext) -> Ready:
    """Skip ``node``, whose ``can_execute`` said no on ``ctx``: its path ends there (its
    writes belong in the final context), and the skip propagates as a false condition's."""
    state.sinks[node] = ctx
    return skip(state, node)


def merged(state: InstanceState, target: str, arrived: list[Arrival]) -> WorkflowContext:
    """The contexts that arrived at join ``target``, merged in edge declaration order."""
    try:
        return state.plan.rules.join(arrived, step=target)
    except Exception as exc:
        join_failed(target, exc, arrived)


def join_failed(target: str, exc: Exception, arrived: list[Arrival]) -> NoReturn:
    """Raise the failure of the join ``target`` (called where its merge raised ``exc``): it
    fails the join's step, with the context the branches had in common."""
    raise StepFailure(target, exc, common_ancestor([c for _, _, c in arrived])) from exc


# -- the edge arrival: template form ----------------------------------------------------------
def arrival_source(source: str, index: int, target: str, in_degree: int, counted_edges: bool,
                   pad: str) -> tuple[list[str], str]:
    """The lines a schedule resolves edge ``index`` (``source`` -> ``target``, a join of
    ``in_degree`` edges) with, taken with ``ctx``; and the indentation of the code that runs
    when this was the last arrival, with ``ctx`` then the merged context.

    With ``counted_edges`` (forks of the plan also reach joins through :func:`fork`) it is a
    call of :func:`arrive`. Otherwise every arrival of a static plan carries a context, so
    the number that arrived says when the last one is in: :func:`arrive` and :func:`merged`
    written out for that case."""
    if counted_edges:
        return [f"{pad}ready = arrive(state, {target!r}, {index}, {source!r}, ctx)\n",
                f"{pad}if ready:\n",
                f"{pad}    ctx = ready[0][1]\n"], pad + "    "
    return [f"{pad}arrived = state.arrivals.get({target!r})\n",
            f"{pad}if arrived is None:\n",
            f"{pad}    state.arrivals[{target!r}] = [({index}, {source!r}, ctx)]\n",
            f"{pad}else:\n",
            f"{pad}    arrived.append(({index}, {source!r}, ctx))\n",
            f"{pad}    if len(arrived) == {in_degree}:\n",
            f"{pad}        del state.arrivals[{target!r}]\n",
            f"{pad}        try:\n",
            f"{pad}            ctx = join(arrived, {target!r})\n",
            f"{pad}        except Exception as exc:\n",
            f"{pad}            join_failed({target!r}, exc, arrived)\n"], pad + "        "


NAMESPACE: dict[str, Any] = {"arrive": arrive, "fork": fork, "join_failed": join_failed}
"""The names the template above uses (a schedule adds ``join``, its plan's merge)."""
