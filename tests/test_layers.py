"""The layering of docs/ARCHITECTURE.md, enforced: each layer imports only from layers below it,
and sibling packages of one layer do not import each other."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).parent.parent / "src" / "shardflow"

LAYERS = {
    "errors": 0, "_types": 0, "_clock": 0, "_loop": 0, "_tasks": 0, "_text": 0, "jsonvalue": 0,
    "events": 0, "_interrupt": 0,
    "context": 1,
    "model": 2, "limits": 2,
    "store": 3,
    "engine": 4,
    "batch": 5, "metrics": 5,  # metrics: Prometheus figures and /healthz, for run and consume
    "run": 6, "queue": 6,  # queue: shardflow consume on Redis Streams
    "backends": 6,  # pools beside batch's own (Ray); batch names them by reference only
    "web": 7, "bench": 7,  # the applications on top of runs: the inbox, the benchmarks
    "cli": 8,  # the commands compose them all (``tasks serve`` starts the inbox)
    "__init__": 9, "__main__": 9,
    "examples": 10,  # written as users write workflows: against the public facade
}


def _unit(module: str) -> str:
    """The layer unit of a dotted module name inside shardflow (``model``, ``errors`` ...)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("shardflow"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("shardflow"))
    return found


def test_every_module_imports_only_from_lower_layers() -> None:
    problems = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        module = ".".join(rel.parts)
        unit = _unit(module) if len(rel.parts) > 1 else "__init__"
        assert unit in LAYERS, f"{module} is in no layer; add it to LAYERS"
        for imported in _imports(path):
            other = _unit(imported) if imported != "shardflow" else "__init__"
            if other == unit:
                continue
            if LAYERS[other] >= LAYERS[unit]:
                problems.append(f"{module} (L{LAYERS[unit]}) imports {imported} (L{LAYERS[other]})")
    assert not problems, "\n".join(problems)


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.parts[-1] == "__init__" else rel.parts
    return ".".join(parts)


def test_no_module_is_over_400_lines() -> None:
    """Small single-purpose modules: a module past 400 lines is doing two things."""
    long = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 400}
    assert not long, long


def _runtime_imports(path: Path) -> set[str]:
    """The shardflow modules ``path`` imports when it runs (``if TYPE_CHECKING:`` blocks,
    which only the type checker reads, are left out)."""
    found: set[str] = set()

    def walk(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if (isinstance(child, ast.If) and isinstance(child.test, ast.Name)
                    and child.test.id == "TYPE_CHECKING"):
                for other in child.orelse:
                    walk(other)
                continue
            if isinstance(child, ast.ImportFrom) and child.module and \
                    child.module.startswith("shardflow"):
                found.add(child.module)  # and ``from package import module``:
                found.update(f"{child.module}.{a.name}" for a in child.names)
            elif isinstance(child, ast.Import):
                found.update(a.name for a in child.names if a.name.startswith("shardflow"))
            walk(child)

    walk(ast.parse(path.read_text()))
    return found


def test_no_import_cycle() -> None:
    """No module imports itself through others at run time (module level and lazy imports
    alike), so every module can be imported first."""
    modules = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for imported in _runtime_imports(path):
            while imported and imported not in modules:  # `from pkg.mod import name`
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                targets.add(imported)
        graph[name] = targets
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt):], nxt] if nxt in stack else [node, nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_the_architecture_doc_lists_the_layers_this_test_enforces() -> None:
    """docs/ARCHITECTURE.md's layer map is what users read: every unit at its level."""
    import re

    text = (SRC.parent.parent / "docs" / "ARCHITECTURE.md").read_text()
    block = text.split("## Layers", 1)[1].split("```", 2)[1]
    documented: dict[str, int] = {}
    level = -1
    for line in block.splitlines():
        head = re.match(r"L(\d+)\s", line)
        if head:
            level = int(head.group(1))
        for name in re.findall(r"(?<![\w./(])([a-z_]+)(?:/(?=\s)|\.py\b)", line):
            documented[name] = level
    assert documented == LAYERS
