"""Loading a workflow by reference: ``package.module:attribute`` or ``path/to/file.py:attr``.

Workers import the workflow themselves (nothing is pickled), so the coordinator passes this
reference, and checks it loads before starting any worker. Like uvicorn and celery, the CLI puts
the app directory (the current directory unless ``--app-dir`` says otherwise) first on the
import path with :func:`use_app_dir`; workers start with the coordinator's ``sys.path``, so they
find the same modules.

Because every worker imports the workflow's module, code that runs when that module is imported
runs once per process. A script that starts a batch at import would start one in every worker,
so that is refused, with where it happens and how to fix it: a script's entry point called
outside an ``if __name__ == "__main__":`` guard, a batch started while a workflow is being
imported, or a ``BatchExecutor`` started by the top-level code of the ``__main__`` script.
"""

from __future__ import annotations

import ast
import contextvars
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType, ModuleType

from shardflow.errors import WorkflowLoadError
from shardflow.model.definition import WorkflowDefinition

_GUARD = 'put it under `if __name__ == "__main__":`, or move the workflow into a module of its own'
# Calls that make a file a script rather than a module when they run at import: its entry point.
_ENTRY_POINTS = frozenset({"main", "run", "run_batch"})
_importing: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar(
    "shardflow_importing_targets", default=())


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
    _refuse_while_importing("load a workflow")
    module_ref, sep, attr = target.rpartition(":")
    if not sep or not module_ref or not attr:
        raise WorkflowLoadError(
            target, "expected 'package.module:attribute' or 'path/to/file.py:attribute'"
        )
    token = _importing.set((*_importing.get(), target))
    try:
        if module_ref.endswith(".py") or "/" in module_ref or "\\" in module_ref:
            module = _import_file(target, Path(module_ref))
        else:
            module = _import_module(target, module_ref)
    finally:
        _importing.reset(token)
    try:
        value = getattr(module, attr)
    except AttributeError:
        raise WorkflowLoadError(target, f"module {module_ref!r} has no attribute {attr!r}") from None
    if not isinstance(value, WorkflowDefinition):
        raise WorkflowLoadError(
            target, f"{attr!r} is a {type(value).__name__}, not a WorkflowDefinition"
        )
    return value


def _import_module(target: str, module_ref: str) -> ModuleType:
    try:
        return importlib.import_module(module_ref)
    except WorkflowLoadError:
        raise  # the module started a batch while being imported: that error says so
    except ModuleNotFoundError as exc:
        if exc.name and module_ref.startswith(exc.name):
            raise WorkflowLoadError(
                target, f"no module named {exc.name!r} in {sys.path[0]!r} (the app directory: "
                "run shardflow where the module is, or pass --app-dir) nor in the installed "
                "packages") from exc
        raise WorkflowLoadError(target, f"importing {module_ref!r} failed: {exc}") from exc
    except Exception as exc:
        raise WorkflowLoadError(target, f"importing {module_ref!r} failed: {exc!r}") from exc


def _import_file(target: str, path: Path) -> ModuleType:
    if not path.is_file():
        raise WorkflowLoadError(target, f"file {str(path)!r} does not exist")
    resolved = path.resolve()
    name = "shardflow_user_" + "".join(c if c.isalnum() else "_" for c in str(resolved))
    if name in sys.modules:
        return sys.modules[name]
    entry_point = _unguarded_entry_point(resolved)
    if entry_point is not None:
        line, call = entry_point
        raise WorkflowLoadError(
            target, f"{resolved} line {line} calls {call}() when the file is imported, and every "
            f"worker process imports it to find the workflow, so it would run again in each: {_GUARD}")
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise WorkflowLoadError(target, f"cannot import {str(path)!r}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(resolved.parent))
    try:
        spec.loader.exec_module(module)
    except WorkflowLoadError:
        del sys.modules[name]
        raise  # the file started a batch while being imported: that error says so
    except Exception as exc:
        del sys.modules[name]
        raise WorkflowLoadError(target, f"executing {str(path)!r} failed: {exc!r}") from exc
    finally:
        sys.path.remove(str(resolved.parent))
    return module


def reference_of(definition: WorkflowDefinition) -> str:
    """The ``module:attribute`` reference of a definition object, found where it was created."""
    _refuse_while_importing("start a batch")
    module_name = definition.defined_in
    module = sys.modules.get(module_name) if module_name else None
    if module is not None:
        for attr, value in vars(module).items():
            if value is definition:
                if module_name == "__main__":
                    path = getattr(module, "__file__", None)
                    if path:
                        _refuse_unguarded_main(f"{path}:{attr}", module, Path(path))
                        return f"{path}:{attr}"
                    break
                return f"{module_name}:{attr}"
    raise WorkflowLoadError(
        definition.name,
        "worker processes import the workflow by reference; define it at module level "
        "(or pass 'package.module:attribute')",
    )


# -- scripts that would run again in every worker ------------------------------------------------
def _refuse_while_importing(action: str) -> None:
    """Refuse to start a batch from code that runs while a workflow's module is imported: each
    worker imports that module too, and would start the batch again."""
    targets = _importing.get()
    if targets:
        frame = _module_frame(sys._getframe(1), lambda f: True)
        where = f"{frame.f_code.co_filename} line {frame.f_lineno}" if frame else "its module"
        raise WorkflowLoadError(
            targets[-1], f"importing it tries to {action} ({where}), and every worker process "
            f"imports it to find the workflow, so that would happen again in each: {_GUARD}")


def _refuse_unguarded_main(target: str, main: ModuleType, path: Path) -> None:
    """Refuse a batch of a ``__main__`` workflow started by the script's own top-level code
    outside a ``__main__`` guard: workers import the script by path and would run that code."""
    frame = _module_frame(sys._getframe(1), lambda f: f.f_globals is vars(main))
    if frame is None:
        return  # not started by the script's top-level code (a thread, an interactive session)
    try:
        tree = ast.parse(path.read_bytes(), str(path))
    except (OSError, SyntaxError, ValueError):
        return  # no readable source to tell; the workers' own check still applies
    if not _is_guarded(tree.body, frame.f_lineno):
        raise WorkflowLoadError(
            target, f"{path} line {frame.f_lineno} starts a batch of a workflow defined "
            "in the script itself, outside a `__main__` guard; worker processes import the script "
            f"to find the workflow and would run that line again: {_GUARD}")


def _module_frame(frame: FrameType | None,
                  accept: Callable[[FrameType], bool]) -> FrameType | None:
    """The innermost frame running a module's top-level code that ``accept`` accepts."""
    while frame is not None:
        if frame.f_code.co_name == "<module>" and accept(frame):
            return frame
        frame = frame.f_back
    return None


def _is_main_guard(test: ast.expr) -> bool:
    """``__name__ == "__main__"`` (either way round)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    return (any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides)
            and any(isinstance(s, ast.Constant) and s.value == "__main__" for s in sides))


def _is_guarded(body: list[ast.stmt], line: int) -> bool:
    """Whether ``line`` lies inside the body of a ``__main__`` guard in ``body``."""
    for statement in body:
        if not statement.lineno <= line <= (statement.end_lineno or statement.lineno):
            continue
        if isinstance(statement, ast.If) and _is_main_guard(statement.test):
            return any(s.lineno <= line <= (s.end_lineno or s.lineno) for s in statement.body)
        return any(_is_guarded(inner, line) for inner in _blocks(statement))
    return False


def _blocks(statement: ast.stmt) -> list[list[ast.stmt]]:
    """The statement lists nested in a compound statement that runs at import time."""
    if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return []
    blocks = [getattr(statement, name, None) for name in ("body", "orelse", "finalbody")]
    blocks += [handler.body for handler in getattr(statement, "handlers", [])]
    return [b for b in blocks if isinstance(b, list)]


def _unguarded_entry_point(path: Path) -> tuple[int, str] | None:
    """(line, callee) of the first call to a script entry point (``main()``, ``asyncio.run(...)``,
    ``run_batch(...)``) that runs when the file is imported, outside a ``__main__`` guard."""
    try:
        tree = ast.parse(path.read_bytes(), str(path))
    except (OSError, SyntaxError, ValueError):
        return None  # importing it reports the problem with its own line number
    found: list[tuple[int, str]] = []

    def scan(body: list[ast.stmt]) -> None:
        for statement in body:
            if isinstance(statement, ast.If) and _is_main_guard(statement.test):
                scan(statement.orelse)
            elif isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
                name = _called_name(statement.value.func)
                if name in _ENTRY_POINTS:
                    found.append((statement.lineno, ast.unparse(statement.value.func)))
            else:
                for block in _blocks(statement):
                    scan(block)

    scan(tree.body)
    return found[0] if found else None


def _called_name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""
