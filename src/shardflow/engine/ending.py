"""The context an instance ends with, when more than one path ended (or parked).

Kept out of the interpreter: it runs once per instance, and only when the single-sink shortcut
of :meth:`Interpreter.final_context` does not apply.
"""

from __future__ import annotations

from shardflow.context import WorkflowContext, common_ancestor
from shardflow.engine.attempt import StepFailure
from shardflow.engine.parking import Parked
from shardflow.model.plan import Plan


def merge_ends(plan: Plan, sinks: dict[str, WorkflowContext], parked: dict[str, Parked],
               fallback: WorkflowContext | None, instance_id: str) -> WorkflowContext:
    """The contexts where paths ended (``sinks``) and parked inputs, merged in node order;
    ``fallback`` (else an empty context) if there is none.

    Raises :class:`StepFailure` (node ``<end>``) if they cannot be merged.
    """
    order = list(plan.nodes)
    found = sorted(sinks.items(), key=lambda kv: order.index(kv[0]))
    found += [(p.node, p.base) for p in parked.values()]
    if not found:
        return fallback if fallback is not None else WorkflowContext(instance_id=instance_id)
    if len(found) == 1:
        return found[0][1]
    base = common_ancestor([c for _, c in found])
    if base is None:
        return found[-1][1]
    try:
        return plan.rules.merge(base, found, step="<end>")
    except Exception as exc:
        raise StepFailure("<end>", exc, base) from exc
