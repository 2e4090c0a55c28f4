"""Diagrams of a definition: Mermaid flowcharts and Graphviz DOT."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from shardflow.model.groups import ParallelGroup, RaceGroup

if TYPE_CHECKING:
    from shardflow.model.definition import WorkflowDefinition


def _safe(name: str) -> str:
    return re.sub(r"\W", "_", name)


def _label(edge_condition: Any) -> str:
    if edge_condition is None:
        return ""
    name = getattr(edge_condition, "__name__", "condition")
    return "condition" if name == "<lambda>" else name


def to_mermaid(defn: WorkflowDefinition) -> str:
    lines = ["flowchart TD"]
    for node_id, node in defn.steps.items():
        nid = _safe(node_id)
        if isinstance(node, ParallelGroup | RaceGroup):
            kind = "race" if isinstance(node, RaceGroup) else "parallel"
            lines.append(f'    subgraph {nid}["{node_id} ({kind})"]')
            for branch in node.branches:
                bid = f"{nid}__{_safe(branch.step_name)}"
                lines.append(f'        {bid}["{branch.step_name}"]')
            if isinstance(node, ParallelGroup) and node.callback is not None:
                cid = f"{nid}__{_safe(node.callback.step_name)}"
                lines.append(f'        {cid}(["{node.callback.step_name} (callback)"])')
                for branch in node.branches:
                    lines.append(f"        {nid}__{_safe(branch.step_name)} --> {cid}")
            lines.append("    end")
        else:
            shape = '[/"{}"/]' if hasattr(node, "form_schema") else '["{}"]'
            lines.append(f"    {nid}{shape.format(node_id)}")
    for edge in defn.edges:
        label = _label(edge.condition)
        arrow = f"-->|{label}|" if label else "-->"
        lines.append(f"    {_safe(edge.source)} {arrow} {_safe(edge.target)}")
    return "\n".join(lines) + "\n"


def to_dot(defn: WorkflowDefinition) -> str:
    lines = [f'digraph "{defn.name}" {{', "    rankdir=TB;"]
    for node_id, node in defn.steps.items():
        if isinstance(node, ParallelGroup | RaceGroup):
            kind = "race" if isinstance(node, RaceGroup) else "parallel"
            branches = "|".join(b.step_name for b in node.branches)
            lines.append(f'    "{node_id}" [shape=record, label="{node_id} ({kind})|{{{branches}}}"];')
        else:
            lines.append(f'    "{node_id}" [shape=box];')
    for edge in defn.edges:
        label = _label(edge.condition)
        attr = f' [label="{label}"]' if label else ""
        lines.append(f'    "{edge.source}" -> "{edge.target}"{attr};')
    lines.append("}")
    return "\n".join(lines) + "\n"
