"""Diagrams of awkward definitions: every name survives escaping, ids stay distinct and clear
of reserved words, group callbacks and human steps are drawn. DOT is checked by Graphviz
itself; Mermaid by parsing the flowchart statement by statement."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections import Counter
from itertools import pairwise
from typing import Any

import pytest

from shardflow import (
    BaseHumanStep,
    BaseMachineStep,
    Edge,
    ParallelGroup,
    RaceGroup,
    WorkflowContext,
    WorkflowDefinition,
)

# Names that break naive quoting, id mangling or a format's lexer.
AWKWARD = ['say "hi"', "back\\slash", "trail\\", "two\nlines", "[brackets] {braces} (parens) <tag>",
           "pipe|amp&hash#;semi", "café ✓ 🚀", "100% %%{init}%%", "a-b", "a_b", "end", "End",
           "node", "edge", "graph", "subgraph", "class", "classify", "style", "click", "ctrl\x01",
           "set direction TB", "`tick`", "key: #35;"]


def machine(name: str) -> BaseMachineStep:
    step_class: type[BaseMachineStep] = type("Machine", (BaseMachineStep,), {"name": name})
    return step_class()


def human(name: str) -> BaseHumanStep:
    step_class: type[BaseHumanStep] = type("Human", (BaseHumanStep,), {"name": name, "title": name})
    return step_class()


class Odd:
    """A condition whose name is not an identifier."""

    __name__ = 'is "odd" | <maybe>'

    def __call__(self, context: WorkflowContext) -> bool:
        return True


def awkward_workflow() -> WorkflowDefinition:
    steps: dict[str, Any] = {name: machine(name) for name in AWKWARD}
    steps["review [legal]"] = human("review [legal]")
    steps["fan \"out\""] = ParallelGroup(
        machine("last step"), human("sign\noff"), RaceGroup(machine("x-y"), machine("x_y"), name="race"),
        callback=machine('agg "all"'))
    edges = [Edge(a, b) for a, b in pairwise(AWKWARD)]
    edges += [Edge(AWKWARD[-1], "review [legal]", condition=Odd()),
              Edge("review [legal]", "fan \"out\"")]
    return WorkflowDefinition(name='flow "q"\\', steps=steps, edges=edges, initial_step=AWKWARD[0])


def shown(name: str) -> str:
    """How a name reads in a diagram: control characters other than line breaks made visible."""
    return name.replace("\x01", "\\x01")


# Every label each diagram must show, once per drawn item.
EXPECTED_NODE_LABELS = Counter([shown(n) for n in AWKWARD] + [
    "review [legal]", "last step", "sign\noff", "x-y", "x_y", 'agg "all" (callback)'])
EXPECTED_BOX_LABELS = Counter(['fan "out" (parallel)', "race (race)"])


# -- Mermaid ----------------------------------------------------------------------------------
# Each of these as a node id broke a flowchart in Mermaid 10.9 and 11.17.
MERMAID_KEYWORDS = {"end", "subgraph", "graph", "flowchart", "style", "linkstyle", "classdef",
                    "class", "click", "call", "href", "interpolate", "_self", "_blank", "_parent",
                    "_top"}
ID = r"[A-Za-z_][A-Za-z0-9_]*"
NODE = re.compile(rf'(?P<id>{ID})(?P<open>\["|\[/"|\(\[")(?P<label>[^"]*)(?P<close>"\]|"/\]|"\]\))'
                  r"(?::::(?P<cls>\w+))?")
SUBGRAPH = re.compile(rf'subgraph (?P<id>{ID})\["(?P<label>[^"]*)"\]')
EDGE = re.compile(rf'(?P<a>{ID}) -->(?:\|(?:"(?P<quoted>[^"]*)"|(?P<plain>\w+))\|)? (?P<b>{ID})')
CLASSDEF = re.compile(r"classDef (?P<cls>\w+) [^;]+")
CLASS = re.compile(rf"class (?P<ids>{ID}(?:,{ID})*) (?P<cls>\w+)")


def mermaid_decode(text: str) -> str:
    text = text.replace("<br>", "\n")
    return re.sub(r"#(\w+);", lambda m: chr(int(m[1])) if m[1].isdigit() else html.unescape(f"&{m[1]};"),
                  text)


def parse_mermaid(text: str) -> dict[str, Any]:
    lines = text.splitlines()
    grouped = any(line.lstrip().startswith("subgraph ") for line in lines)
    assert lines[0] == ("flowchart TD" if grouped else "graph TD")
    nodes: dict[str, tuple[str, str, str | None]] = {}
    boxes: dict[str, str] = {}
    edges: list[tuple[str, str, str | None]] = []
    classes: set[str] = set()
    assigned: dict[str, str] = {}
    depth = 0
    for number, raw in enumerate(lines[1:], 2):
        line = raw.strip()
        assert "%%" not in line and not re.search(r"direction\s+(TB|BT|RL|LR)", line), raw
        if m := NODE.fullmatch(line):
            assert m["id"] not in nodes and m["id"] not in boxes, f"line {number}: {m['id']} twice"
            nodes[m["id"]] = (mermaid_decode(m["label"]), m["open"], m["cls"])
        elif m := SUBGRAPH.fullmatch(line):
            assert m["id"] not in nodes and m["id"] not in boxes, f"line {number}: {m['id']} twice"
            boxes[m["id"]] = mermaid_decode(m["label"])
            depth += 1
        elif line == "end":
            depth -= 1
            assert depth >= 0, f"line {number}: 'end' without a subgraph"
        elif m := EDGE.fullmatch(line):
            label = m["plain"] or (mermaid_decode(m["quoted"]) if m["quoted"] is not None else None)
            edges.append((m["a"], m["b"], label))
        elif m := CLASSDEF.fullmatch(line):
            classes.add(m["cls"])
        elif m := CLASS.fullmatch(line):
            assert m["cls"] in classes, f"line {number}: class {m['cls']} is not defined before"
            for node_id in m["ids"].split(","):
                assert node_id in nodes or node_id in boxes, f"line {number}: {node_id} undeclared"
                assigned[node_id] = m["cls"]
        else:
            pytest.fail(f"line {number} is no flowchart statement: {raw!r}")
    assert depth == 0, "a subgraph is not closed"
    return {"nodes": nodes, "boxes": boxes, "edges": edges, "classes": classes,
            "assigned": assigned}


def test_mermaid_declares_every_edge_end_and_uses_no_reserved_id() -> None:
    parsed = parse_mermaid(awkward_workflow().to_mermaid())
    declared = set(parsed["nodes"]) | set(parsed["boxes"])
    for a, b, _ in parsed["edges"]:
        assert a in declared and b in declared, (a, b)
    for node_id in declared:
        assert node_id.lower() not in MERMAID_KEYWORDS, node_id
    assert len(parsed["edges"]) == len(awkward_workflow().edges) + 3  # + one into the callback per branch


def test_mermaid_shows_every_name_exactly() -> None:
    parsed = parse_mermaid(awkward_workflow().to_mermaid())
    assert Counter(label for label, _, _ in parsed["nodes"].values()) == EXPECTED_NODE_LABELS
    assert Counter(parsed["boxes"].values()) == EXPECTED_BOX_LABELS
    assert {label for _, _, label in parsed["edges"] if label} == {'is "odd" | <maybe>'}


def chain(*names: str) -> WorkflowDefinition:
    return WorkflowDefinition(name="chain", steps={n: machine(n) for n in names},
                              edges=[Edge(a, b) for a, b in pairwise(names)],
                              initial_step=names[0])


def test_similar_and_reserved_names_get_distinct_safe_ids_in_both_formats() -> None:
    names = ("a-b", "a_b", "a b", "end", "node", "graph", "classify")
    parsed = parse_mermaid(chain(*names).to_mermaid())  # fails on an id declared twice
    by_label = {label: node_id for node_id, (label, _, _) in parsed["nodes"].items()}
    assert set(by_label) == set(names)
    assert not {i.lower() for i in by_label.values()} & MERMAID_KEYWORDS
    assert by_label["a_b"] == "a_b" and by_label["classify"] == "classify"  # kept as written
    assert [(a, b) for a, b, _ in parsed["edges"]] == [
        (by_label[a], by_label[b]) for a, b in pairwise(names)]
    nodes = svg_groups(render_svg(chain(*names).to_dot()), "node")
    assert sorted(text for _, text, _ in nodes) == sorted(names)
    assert len({title for title, _, _ in nodes}) == len(names)
    assert not {title.lower() for title, _, _ in nodes} & DOT_KEYWORDS


def test_mermaid_marks_human_steps_and_draws_the_callback_after_every_branch() -> None:
    parsed = parse_mermaid(awkward_workflow().to_mermaid())
    nodes = parsed["nodes"]
    humans = {label for label, _, cls in nodes.values() if cls == "human"}
    assert humans == {"review [legal]", "sign\noff"}
    assert "human" in parsed["classes"]
    by_label = {label: node_id for node_id, (label, _, _) in nodes.items()}
    callback = by_label['agg "all" (callback)']
    into_callback = {a for a, b, _ in parsed["edges"] if b == callback}
    race_box = next(i for i, label in parsed["boxes"].items() if label == "race (race)")
    assert into_callback == {by_label["last step"], by_label["sign\noff"], race_box}


def test_mermaid_draws_an_instance_state_on_the_nodes_it_names() -> None:
    names = ("a-b", "end", "graph", "classify", "idle")
    text = chain(*names).to_mermaid_with_state(
        current_step="classify", completed_steps=["a-b", "end"], failed_steps=["graph"])
    parsed = parse_mermaid(text)
    state = {parsed["nodes"][i][0]: cls for i, cls in parsed["assigned"].items()}
    assert state == {"a-b": "completed", "end": "completed", "graph": "failed",
                     "classify": "current"}
    assert parse_mermaid(chain(*names).to_mermaid_with_state())["assigned"] == {}


def test_mermaid_header_is_litestar_workflows_graph_unless_groups_need_a_flowchart() -> None:
    # litestar-workflows' users check for ``graph TD``; Mermaid 10 reads subgraph members
    # differently under ``graph``, so a diagram with a group stays a ``flowchart``.
    assert chain("a", "b").to_mermaid().startswith("graph TD\n")
    assert chain("a", "b").to_mermaid_with_state(current_step="b").startswith("graph TD\n")
    assert awkward_workflow().to_mermaid().startswith("flowchart TD\n")


def test_mermaid_state_of_an_unknown_node_is_refused_with_its_name() -> None:
    with pytest.raises(ValueError, match="'ghost': it is not a node of workflow 'chain'"):
        chain("a", "b").to_mermaid_with_state(current_step="ghost")


# -- DOT --------------------------------------------------------------------------------------
SVG = "{http://www.w3.org/2000/svg}"
DOT_KEYWORDS = {"node", "edge", "graph", "digraph", "subgraph", "strict"}


def render_svg(dot_source: str) -> ET.Element:
    dot = shutil.which("dot")
    if dot is None:
        pytest.skip("Graphviz 'dot' is not on PATH (apt-get install graphviz)")
    proc = subprocess.run([dot, "-Tsvg"], input=dot_source.encode(), capture_output=True,
                          timeout=60, check=False)
    assert proc.returncode == 0 and not proc.stderr, proc.stderr.decode()
    return ET.fromstring(proc.stdout)


def svg_groups(svg: ET.Element, kind: str) -> list[tuple[str, str, set[str]]]:
    """(title, text lines joined by newlines, classes) of every <g> of one kind."""
    found = []
    for g in svg.iter(f"{SVG}g"):
        classes = set(g.get("class", "").split())
        if kind in classes:
            title = g.findtext(f"{SVG}title") or ""
            text = "\n".join(t.text or "" for t in g.iter(f"{SVG}text"))
            found.append((title, text, classes))
    return found


def test_graphviz_renders_every_name_exactly() -> None:
    svg = render_svg(awkward_workflow().to_dot())
    nodes = svg_groups(svg, "node")
    assert Counter(text for _, text, _ in nodes) == EXPECTED_NODE_LABELS
    assert Counter(text for _, text, _ in svg_groups(svg, "cluster")) == EXPECTED_BOX_LABELS
    assert len({title for title, _, _ in nodes}) == len(nodes)  # a-b and a_b: two nodes
    assert not {title.lower() for title, _, _ in nodes} & DOT_KEYWORDS
    labels = [text for _, text, _ in svg_groups(svg, "edge") if text]
    assert labels == ['is "odd" | <maybe>']


def test_graphviz_draws_the_callback_after_every_branch_and_marks_human_steps() -> None:
    svg = render_svg(awkward_workflow().to_dot())
    nodes = svg_groups(svg, "node")
    by_label = {text: title for title, text, _ in nodes}
    assert {text for _, text, classes in nodes if "human" in classes} == {"review [legal]", "sign\noff"}
    edges = {title for title, _, _ in svg_groups(svg, "edge")}
    callback = by_label['agg "all" (callback)']
    for branch in ("last step", "sign\noff", "x-y"):  # the race branch reaches it from its box
        assert f"{by_label[branch]}->{callback}" in edges
    assert f"{by_label['a-b']}->{by_label['a_b']}" in edges


def test_dot_and_mermaid_draw_a_workflow_whose_edges_name_missing_nodes() -> None:
    broken = WorkflowDefinition(name="broken", steps={"start": machine("start")},
                                edges=[Edge("start", "nowhere")], initial_step="start")
    parsed = parse_mermaid(broken.to_mermaid())
    assert [label for label, _, _ in parsed["nodes"].values()] == ["start", "nowhere (missing)"]
    svg = render_svg(broken.to_dot())
    assert sorted(text for _, text, _ in svg_groups(svg, "node")) == ["nowhere (missing)", "start"]
