"""The layering of ARCHITECTURE.md, enforced: each layer imports only from layers below it,
and sibling packages of one layer do not import each other."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).parent.parent / "src" / "shardflow"

LAYERS = {
    "errors": 0, "_types": 0, "_clock": 0, "jsonvalue": 0,
    "context": 1,
    "model": 2, "limits": 2,
    "store": 3,
    "engine": 4,
    "batch": 5,
    "run": 6,
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
