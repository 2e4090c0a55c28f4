"""Loading a workflow by reference: ``package.module:attribute`` or ``path/to/file.py:attr``.

Workers import the workflow themselves (nothing is pickled), so the coordinator passes this
reference, and checks it loads before starting any worker. Like uvicorn and celery, the CLI puts
the app directory (the current directory unless ``--app-dir`` says otherwise) first on the
import path with :func:`use_app_dir`; workers start with the coordinator's ``sys.path``, so they
find the same modules.

Because every worker imports the workflow's file, whatever that file runs at import runs once
per process. So a file that calls a script's entry point at import (``main()``,
``asyncio.run(...)``, ``run_batch(...)``) outside an ``if __name__ == "__main__":`` guard is
refused before it runs, naming the line and the fix: as a target, and as the ``__main__``
script of a workflow handed to the batch executor.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

from shardflow._text import did_you_mean
from shardflow.errors import WorkflowLoadError
from shardflow.model.definition import WorkflowDefinition

_FILE_MODULE_PREFIX = "shardflow_user_"  # the module name a file target is imported under
# Calls that make a file a script when they run at import: its entry point, a batch, a loop.
_ENTRY_POINTS = frozenset({"main", "run", "run_batch"})


def use_app_dir(directory: str | os.PathLike[str] = ".") -> Path:
    """Put ``directory`` (resolved) first on ``sys.path``, where ``module:attribute`` targets
    are looked for first, here and in every worker this process starts."""
    path = Path(directory).resolve()
    entry = str(path)
    while entry in sys.path:
        sys.path.remove(entry)
    sys.path.insert(0, entry)
    return path


def load_workflow(target: str) -> WorkflowDefinition:
    """Import ``target`` and return the :class:`WorkflowDefinition` it names."""
    module_ref, sep, attr = target.rpartition(":")
    if not sep or not module_ref or not attr:
        raise WorkflowLoadError(
            target, "expected 'package.module:attribute' or 'path/to/file.py:attribute'"
        )
    if module_ref.endswith(".py") or "/" in module_ref or "\\" in module_ref:
        module = _import_file(target, Path(module_ref))
    else:
        module = _import_module(target, module_ref)
    try:
        value = getattr(module, attr)
    except AttributeError:
        raise WorkflowLoadError(target, f"module {module_ref!r} has no attribute {attr!r}"
                                + did_you_mean(attr, _workflow_names(module))) from None
    if not isinstance(value, WorkflowDefinition):
        raise WorkflowLoadError(
            target, f"{attr!r} is a {type(value).__name__}, not a WorkflowDefinition"
        )
    return value


def _workflow_names(module: ModuleType) -> list[str]:
    """The names a misspelt attribute most likely meant: the module's workflow definitions,
    else every public name."""
    names = {name: value for name, value in vars(module).items() if not name.startswith("_")}
    workflows = [name for name, value in names.items() if isinstance(value, WorkflowDefinition)]
    return workflows or list(names)


def _import_module(target: str, module_ref: str) -> ModuleType:
    try:
        if module_ref not in sys.modules:
            spec = importlib.util.find_spec(module_ref)
            if spec is not None and spec.origin and spec.origin.endswith(".py"):
                _refuse_unguarded_entry_point(target, Path(spec.origin))
        return importlib.import_module(module_ref)
    except WorkflowLoadError:
        raise
    except ModuleNotFoundError as exc:
        if exc.name and module_ref.startswith(exc.name):
            raise WorkflowLoadError(
                target, f"no module named {exc.name!r} in {sys.path[0]!r}, the first directory "
                "on the import path (for the CLI: --app-dir, by default the current directory), "
                "nor in the installed packages") from exc
        raise WorkflowLoadError(target, f"importing {module_ref!r} failed: {exc}") from exc
    except Exception as exc:
        raise WorkflowLoadError(target, f"importing {module_ref!r} failed: {exc!r}") from exc


def _import_file(target: str, path: Path) -> ModuleType:
    if not path.is_file():
        raise WorkflowLoadError(target, f"file {str(path)!r} does not exist")
    resolved = path.resolve()
    name = _FILE_MODULE_PREFIX + "".join(c if c.isalnum() else "_" for c in str(resolved))
    if name in sys.modules:
        return sys.modules[name]
    _refuse_unguarded_entry_point(target, resolved)
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise WorkflowLoadError(target, f"cannot import {str(path)!r}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(resolved.parent))
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise WorkflowLoadError(target, f"executing {str(path)!r} failed: {exc!r}") from exc
    finally:
        sys.path.remove(str(resolved.parent))
    return module


def reference_of(definition: WorkflowDefinition) -> str:
    """The ``module:attribute`` reference of a definition object, found where it was created."""
    module_name = definition.defined_in
    module = sys.modules.get(module_name) if module_name else None
    if module is not None:
        for attr, value in vars(module).items():
            if value is definition:
                if module_name == "__main__":
                    path = getattr(module, "__file__", None)
                    if path:
                        _refuse_unguarded_entry_point(f"{path}:{attr}", Path(path))
                        return f"{path}:{attr}"
                    break
                if module_name.startswith(_FILE_MODULE_PREFIX):  # loaded from a path: name it so
                    return f"{module.__file__}:{attr}"
                return f"{module_name}:{attr}"
    raise WorkflowLoadError(
        definition.name,
        "worker processes import the workflow by reference; define it at module level "
        "(or pass 'package.module:attribute')",
    )


# -- files that would run again in every worker ----------------------------------------------------
def _refuse_unguarded_entry_point(target: str, path: Path) -> None:
    """Refuse ``path`` (before it runs) if importing it calls a script's entry point."""
    try:
        tree = ast.parse(path.read_bytes(), str(path))
    except (OSError, SyntaxError, ValueError):
        return  # importing it reports the problem, with its own line number
    finder = _ImportTimeCalls()
    finder.visit(tree)
    if finder.found:
        line, call = finder.found[0]
        raise WorkflowLoadError(
            target, f"{path} line {line} calls {call}() when the file is imported, and every "
            "worker process imports it to find the workflow, so it would run again in each: put "
            'it under `if __name__ == "__main__":`, or move the workflow into a module of its own')


class _ImportTimeCalls(ast.NodeVisitor):
    """Finds calls to entry points (``main()``, ``asyncio.run(...)``, ``run_batch(...)``) that
    run when a module is imported: outside function bodies and ``__main__`` guards."""

    def __init__(self) -> None:
        self.found: list[tuple[int, str]] = []

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        """A body runs when it is called, not at import (decorators and defaults still do)."""
        for decorator in getattr(node, "decorator_list", []):
            self.visit(decorator)
        self.visit(node.args)

    visit_AsyncFunctionDef = visit_Lambda = visit_FunctionDef

    def visit_If(self, node: ast.If) -> None:
        if _is_main_guard(node.test):
            for statement in node.orelse:
                self.visit(statement)
        else:
            self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        if name in _ENTRY_POINTS:
            self.found.append((node.lineno, ast.unparse(func)))
        self.generic_visit(node)


def _is_main_guard(test: ast.expr) -> bool:
    """``__name__ == "__main__"`` (either way round)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    return (any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides)
            and any(isinstance(s, ast.Constant) and s.value == "__main__" for s in sides))
