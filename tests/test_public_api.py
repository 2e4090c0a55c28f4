"""The public API: ``shardflow.__all__`` is sorted, complete and importable."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import shardflow

ISSUE_2_NAMES = {
    "WorkflowDefinition", "Edge", "BaseMachineStep", "BaseHumanStep", "ParallelGroup", "RaceGroup",
    "WorkflowContext", "WorkflowRegistry", "LocalExecutionEngine", "WorkflowInstance", "WorkflowStatus",
    "HumanTask", "ShardflowError", "WorkflowValidationError", "WorkflowNotFoundError", "StepTimeoutError",
    "MergeConflictError", "TaskValidationError", "TaskNotFoundError", "TaskAlreadyCompletedError",
}


def test_all_is_sorted_without_duplicates() -> None:
    assert shardflow.__all__ == sorted(shardflow.__all__)
    assert len(set(shardflow.__all__)) == len(shardflow.__all__)


def test_all_holds_every_name_of_the_issue() -> None:
    assert set(shardflow.__all__) >= ISSUE_2_NAMES


def test_every_listed_name_is_importable() -> None:
    module = importlib.import_module("shardflow")
    for name in shardflow.__all__:
        assert getattr(module, name) is not None, name
    namespace: dict[str, object] = {}
    exec("from shardflow import *", namespace)
    assert set(shardflow.__all__) <= set(namespace)


def test_every_public_class_defined_in_shardflow_is_listed() -> None:
    """Nothing public is left out: each class re-exported at the top level is in ``__all__``."""
    exported = {name for name, value in vars(shardflow).items()
                if inspect.isclass(value) and not name.startswith("_")
                and value.__module__.startswith("shardflow")}
    assert exported <= set(shardflow.__all__)


def test_every_error_derives_from_shardflow_error() -> None:
    errors = [getattr(shardflow, n) for n in shardflow.__all__ if n.endswith("Error")]
    assert len(errors) >= 8
    for error in errors:
        assert issubclass(error, shardflow.ShardflowError), error


def test_the_package_is_typed() -> None:
    assert shardflow.__file__ is not None
    assert (Path(shardflow.__file__).parent / "py.typed").is_file()


def test_all_is_exactly_the_documented_public_api() -> None:
    """docs/ARCHITECTURE.md lists the public names; worker plumbing is not among them."""
    text = (Path(__file__).parent.parent / "docs" / "ARCHITECTURE.md").read_text()
    section = text.split("<!-- public-api -->")[1].split("<!-- /public-api -->")[0]
    documented = set(re.findall(r"`(\w+)`", section))
    assert set(shardflow.__all__) == documented
    assert "InstanceRunner" not in shardflow.__all__ and "ShardRunner" not in shardflow.__all__


def test_the_error_tree_is_complete() -> None:
    """Every exception class in errors.py derives from ShardflowError and is drawn in the
    tree of its docstring; the batch error types are named constants."""
    from shardflow import errors

    classes = [v for v in vars(errors).values()
               if inspect.isclass(v) and issubclass(v, Exception) and v.__module__ == errors.__name__]
    assert errors.__doc__ is not None
    for cls in classes:
        assert issubclass(cls, errors.ShardflowError), cls
        if cls is not errors.ShardflowError:
            assert f" {cls.__name__} " in errors.__doc__, f"{cls.__name__} missing from the tree"
    assert (errors.INVALID_INPUT, errors.WORKER_LOST, errors.HARD_TIMEOUT) == (
        "InvalidInput", "WorkerLost", "HardTimeout")
