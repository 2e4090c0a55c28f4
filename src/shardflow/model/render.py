"""Diagrams of a definition: Mermaid flowcharts and Graphviz DOT.

Node names are user text, so each format gets its own escaping, and every drawn item gets an
id that is safe in that format (no reserved word, nothing its lexer reads as syntax) and
distinct from every other id: ``a-b`` and ``a_b`` never share one. A name that already is a
safe id keeps it, so diagrams of ordinary workflows read like their definitions. Groups are
boxes (a Mermaid subgraph, a DOT cluster) around their branches, with the chord callback inside,
after every branch; human steps have their own shape and class.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shardflow.model.groups import ConditionalGroup, Group, ParallelGroup, RaceGroup, SequentialGroup
from shardflow.model.steps import BaseHumanStep, BaseStep

if TYPE_CHECKING:
    from shardflow.model.definition import WorkflowDefinition

_PLAIN_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_NOT_ID_CHAR = re.compile(r"[^A-Za-z0-9_]")

# Words Mermaid's flowchart lexer (flow.jison) reads as keywords wherever an id may stand; each
# broke a diagram in Mermaid 10 and 11. Compared case-insensitively: renderers differ.
_MERMAID_WORDS = frozenset({"end", "subgraph", "graph", "flowchart", "style", "linkstyle",
                            "classdef", "class", "click", "call", "href", "interpolate",
                            "_self", "_blank", "_parent", "_top"})
_DOT_WORDS = frozenset({"node", "edge", "graph", "digraph", "subgraph", "strict"})


def _mermaid_reserved(name: str) -> bool:
    return name.lower() in _MERMAID_WORDS


def _dot_reserved(name: str) -> bool:
    return name.lower() in _DOT_WORDS


# -- what is drawn -------------------------------------------------------------------------------
@dataclass(eq=False)
class _Leaf:
    """One drawn step: a machine or human step, a chord callback, or an edge end that names
    no node (drawn so that a broken definition still shows where it points)."""

    wanted_id: str
    label: str
    depth: int
    kind: str = "step"  # "step" | "human" | "callback" | "missing" | "gateway" | "timer" | "webhook"


@dataclass(eq=False)
class _Box:
    """A group drawn as a box around its members (branches, possibly boxes themselves)."""

    wanted_id: str
    label: str
    depth: int
    members: list[_Leaf | _Box] = field(default_factory=list)
    callback: _Leaf | None = None


_Item = _Leaf | _Box


def _item(wanted_id: str, name: str, node: Any, depth: int) -> _Item:
    if isinstance(node, Group):
        kind = _GROUP_KINDS[type(node)]
        box = _Box(wanted_id, f"{name} ({kind})", depth)
        for branch in node.members:
            box.members.append(_item(f"{wanted_id}__{branch.step_name}", branch.step_name,
                                     branch, depth + 1))
        if isinstance(node, ParallelGroup) and node.callback is not None:
            callback = node.callback.step_name
            box.callback = _Leaf(f"{wanted_id}__{callback}", f"{callback} (callback)",
                                 depth + 1, "callback")
        if not box.members:  # invalid, but still drawn: an edge into the box needs a member
            box.members.append(_Leaf(f"{wanted_id}__empty", "(no branches)", depth + 1))
        return box
    if isinstance(node, BaseHumanStep):
        return _Leaf(wanted_id, name, depth, "human")
    kind = node.step_type.value if isinstance(node, BaseStep) else "step"
    return _Leaf(wanted_id, name, depth, kind if kind in _MERMAID_SHAPES else "step")


_GROUP_KINDS: dict[type, str] = {ParallelGroup: "parallel", RaceGroup: "race",
                                 SequentialGroup: "sequence", ConditionalGroup: "conditional"}


@dataclass
class _Diagram:
    """The definition as items to draw: top-level nodes by node id, and edges between them."""

    nodes: dict[str, _Item]
    edges: list[tuple[str, str, str]]  # source node id, target node id, label

    @classmethod
    def of(cls, defn: WorkflowDefinition) -> _Diagram:
        nodes = {node_id: _item(node_id, node_id, node, 0) for node_id, node in defn.steps.items()}
        edges = []
        for edge in defn.edges:
            for end in (edge.source, edge.target):
                if end not in nodes:
                    nodes[end] = _Leaf(end, f"{end} (missing)", 0, "missing")
            edges.append((edge.source, edge.target, _condition_label(edge.condition)))
        return cls(nodes, edges)

    def items(self) -> Iterator[_Item]:
        def walk(item: _Item) -> Iterator[_Item]:
            yield item
            if isinstance(item, _Box):
                for member in item.members:
                    yield from walk(member)
                if item.callback is not None:
                    yield item.callback

        for item in self.nodes.values():
            yield from walk(item)

    def ids(self, reserved: Callable[[str], bool]) -> dict[_Item, str]:
        """A distinct, safe id for every item. Names that are safe ids keep them, outer
        items first; every other name is rewritten and numbered until it is free."""
        items = list(self.items())
        ids: dict[_Item, str] = {}
        taken: set[str] = set()
        for item in sorted(items, key=lambda i: i.depth):
            wanted = item.wanted_id
            if _PLAIN_ID.match(wanted) and not reserved(wanted) and wanted not in taken:
                ids[item] = wanted
                taken.add(wanted)
        for item in items:
            if item in ids:
                continue
            base = _NOT_ID_CHAR.sub("_", item.wanted_id)
            if not base or base[0].isdigit() or reserved(base):
                base = "n_" + base
            candidate, number = base, 1
            while candidate in taken:
                number += 1
                candidate = f"{base}_{number}"
            ids[item] = candidate
            taken.add(candidate)
        return ids


def _condition_label(condition: Any) -> str:
    """A string condition shows its expression; a callable its name ("condition" for a
    lambda); no condition, nothing."""
    if condition is None:
        return ""
    if isinstance(condition, str):
        return condition
    name = getattr(condition, "__name__", "condition")
    return "condition" if name == "<lambda>" else str(name)


def _visible(text: str) -> str:
    """Line breaks as ``\\n``, tabs as spaces, other control characters as ``\\xNN``."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    return re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", lambda m: f"\\x{ord(m.group()):02x}", text)


# -- Mermaid -------------------------------------------------------------------------------------
# Mermaid turns ``#name;`` and ``#123;`` into HTML entities before it parses, so every character
# that is syntax somewhere (quotes, HTML, ``%%`` directives, the ``:`` its style rewrite keys on,
# the backtick that opens a markdown string) is written as one.
_MERMAID_ESCAPES = {'"': "#quot;", "#": "#35;", "&": "#amp;", "<": "#lt;", ">": "#gt;",
                    "%": "#37;", ":": "#58;", "`": "#96;", "\n": "<br>"}
# The lexer reads any line holding ``direction TB`` (or BT/RL/LR) as a direction statement.
_MERMAID_DIRECTION = re.compile(r"(direction) ", re.IGNORECASE)
_MERMAID_SHAPES = {"step": '["{}"]', "human": '[/"{}"/]', "callback": '(["{}"])',
                   "missing": '["{}"]', "gateway": '{{"{}"}}', "timer": '(("{}"))',
                   "webhook": '[["{}"]]'}
_MERMAID_CLASSES = {"human": "fill:#fff4d6,stroke:#b7791f",
                    "missing": "stroke-dasharray:4 3,stroke:#c53030"}
_MERMAID_STATES = {"completed": "fill:#c6f6d5,stroke:#2f855a",
                   "failed": "fill:#fed7d7,stroke:#c53030",
                   "current": "fill:#fefcbf,stroke:#d69e2e,stroke-width:3px"}


def _mermaid_text(text: str) -> str:
    escaped = "".join(_MERMAID_ESCAPES.get(c, c) for c in _visible(text))
    return _MERMAID_DIRECTION.sub(r"\1#32;", escaped)


def _mermaid_edge_label(label: str) -> str:
    if not label:
        return "-->"
    if re.fullmatch(r"[A-Za-z0-9_]+", label):
        return f"-->|{label}|"
    return f'-->|"{_mermaid_text(label)}"|'


def _mermaid_header(diagram: _Diagram) -> str:
    """``graph TD``, the header litestar-workflows draws (so its users' checks of it hold),
    unless the diagram has a subgraph: Mermaid 10 reads subgraph members differently under
    ``graph`` (docs/DECISIONS.md), so a diagram with groups is a ``flowchart``."""
    has_box = any(isinstance(item, _Box) for item in diagram.nodes.values())
    return "flowchart TD" if has_box else "graph TD"


def to_mermaid(defn: WorkflowDefinition, state: Mapping[str, str] | None = None) -> str:
    """A Mermaid flowchart: groups as subgraphs, callbacks as stadiums after every branch,
    human steps as parallelograms of class ``human``. ``state`` maps node ids to the state
    of an instance there (``completed``, ``failed``, ``current``), drawn as those classes."""
    diagram = _Diagram.of(defn)
    for node_id, node_state in (state or {}).items():
        if node_id not in diagram.nodes:
            raise ValueError(f"cannot draw the state of {node_id!r}: it is not a node of "
                             f"workflow {defn.name!r}")
        if node_state not in _MERMAID_STATES:
            raise ValueError(f"node {node_id!r}: unknown state {node_state!r}, not one of "
                             f"{sorted(_MERMAID_STATES)}")
    ids = diagram.ids(_mermaid_reserved)
    lines = [_mermaid_header(diagram)]

    def draw(item: _Item, indent: str) -> None:
        if isinstance(item, _Leaf):
            shape = _MERMAID_SHAPES[item.kind].format(_mermaid_text(item.label))
            style = f":::{item.kind}" if item.kind in _MERMAID_CLASSES else ""
            lines.append(f"{indent}{ids[item]}{shape}{style}")
            return
        lines.append(f'{indent}subgraph {ids[item]}["{_mermaid_text(item.label)}"]')
        for member in item.members:
            draw(member, indent + "    ")
        if item.callback is not None:
            draw(item.callback, indent + "    ")
            for member in item.members:
                lines.append(f"{indent}    {ids[member]} --> {ids[item.callback]}")
        lines.append(f"{indent}end")

    for item in diagram.nodes.values():
        draw(item, "    ")
    for source, target, label in diagram.edges:
        source_id, target_id = ids[diagram.nodes[source]], ids[diagram.nodes[target]]
        lines.append(f"    {source_id} {_mermaid_edge_label(label)} {target_id}")
    kinds = {item.kind for item in ids if isinstance(item, _Leaf)}
    for kind, style in _MERMAID_CLASSES.items():
        if kind in kinds:
            lines.append(f"    classDef {kind} {style}")
    for name, style in _MERMAID_STATES.items():
        members = [ids[diagram.nodes[n]] for n, s in (state or {}).items() if s == name]
        if members:
            lines.append(f"    classDef {name} {style}")
            lines.append(f"    class {','.join(members)} {name}")
    return "\n".join(lines) + "\n"


# -- DOT -----------------------------------------------------------------------------------------
def _dot_string(text: str) -> str:
    """A quoted DOT string shown as ``text``. Graphviz decodes HTML entities in a label first
    and then its backslash sequences (``\\N`` is the node's name, ``\\n`` a line break), so
    ``&`` becomes an entity and a backslash is doubled."""
    escaped = (_visible(text).replace("&", "&amp;").replace("\\", "\\\\")
               .replace('"', '\\"').replace("\n", "\\n"))
    return f'"{escaped}"'


_DOT_SHAPES = {"step": "shape=box", "human": 'shape=parallelogram, class="human"',
               "callback": 'shape=box, style=rounded, class="callback"',
               "missing": 'shape=box, style=dashed, class="missing"',
               "gateway": 'shape=diamond, class="gateway"', "timer": 'shape=circle, class="timer"',
               "webhook": 'shape=box, peripheries=2, class="webhook"'}


def _entry(item: _Item) -> _Leaf:
    """The leaf an edge into ``item`` is drawn to (clipped at the box when it is a group)."""
    while isinstance(item, _Box):
        item = item.members[0]
    return item


def _exit(item: _Item) -> _Leaf:
    """The leaf an edge out of ``item`` starts from: a group's callback, else its first branch."""
    while isinstance(item, _Box):
        item = item.callback or item.members[0]
    return item


def to_dot(defn: WorkflowDefinition) -> str:
    """Graphviz DOT: groups as clusters (edges into and out of a group are clipped at its box),
    callbacks as rounded boxes after every branch, human steps as parallelograms of class
    ``human`` (a class attribute reaches SVG output)."""
    diagram = _Diagram.of(defn)
    ids = diagram.ids(_dot_reserved)
    lines = [f"digraph {_dot_string(defn.name)} {{", "    rankdir=TB;", "    compound=true;"]

    def edge(source: _Item, target: _Item, label: str, indent: str) -> None:
        attrs = []
        if isinstance(source, _Box):
            attrs.append(f'ltail="cluster_{ids[source]}"')
        if isinstance(target, _Box):
            attrs.append(f'lhead="cluster_{ids[target]}"')
        if label:
            attrs.append(f"label={_dot_string(label)}")
        attr = f" [{', '.join(attrs)}]" if attrs else ""
        lines.append(f'{indent}"{ids[_exit(source)]}" -> "{ids[_entry(target)]}"{attr};')

    def draw(item: _Item, indent: str) -> None:
        if isinstance(item, _Leaf):
            lines.append(f'{indent}"{ids[item]}" [label={_dot_string(item.label)}, '
                         f"{_DOT_SHAPES[item.kind]}];")
            return
        lines.append(f'{indent}subgraph "cluster_{ids[item]}" {{')
        lines.append(f"{indent}    label={_dot_string(item.label)};")
        for member in item.members:
            draw(member, indent + "    ")
        if item.callback is not None:
            draw(item.callback, indent + "    ")
            for member in item.members:
                edge(member, item.callback, "", indent + "    ")
        lines.append(f"{indent}}}")

    for item in diagram.nodes.values():
        draw(item, "    ")
    for source, target, label in diagram.edges:
        edge(diagram.nodes[source], diagram.nodes[target], label, "    ")
    lines.append("}")
    return "\n".join(lines) + "\n"
