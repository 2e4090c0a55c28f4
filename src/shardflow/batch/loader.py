"""Loading a workflow by reference: ``package.module:attribute`` or ``path/to/file.py:attr``.

Workers import the workflow themselves (nothing is pickled), so the coordinator passes this
reference, and checks it loads before starting any worker.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from shardflow.errors import WorkflowLoadError
from shardflow.model.definition import WorkflowDefinition


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
        try:
            module = importlib.import_module(module_ref)
        except ModuleNotFoundError as exc:
            if exc.name and module_ref.startswith(exc.name):
                raise WorkflowLoadError(target, f"no module named {exc.name!r}") from exc
            raise WorkflowLoadError(target, f"importing {module_ref!r} failed: {exc}") from exc
        except Exception as exc:
            raise WorkflowLoadError(target, f"importing {module_ref!r} failed: {exc!r}") from exc
    try:
        value = getattr(module, attr)
    except AttributeError:
        raise WorkflowLoadError(target, f"module {module_ref!r} has no attribute {attr!r}") from None
    if not isinstance(value, WorkflowDefinition):
        raise WorkflowLoadError(
            target, f"{attr!r} is a {type(value).__name__}, not a WorkflowDefinition"
        )
    return value


def _import_file(target: str, path: Path) -> object:
    if not path.is_file():
        raise WorkflowLoadError(target, f"file {str(path)!r} does not exist")
    resolved = path.resolve()
    name = "shardflow_user_" + "".join(c if c.isalnum() else "_" for c in str(resolved))
    if name in sys.modules:
        return sys.modules[name]
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
                        return f"{path}:{attr}"
                    break
                return f"{module_name}:{attr}"
    raise WorkflowLoadError(
        definition.name,
        "worker processes import the workflow by reference; define it at module level "
        "(or pass 'package.module:attribute')",
    )
