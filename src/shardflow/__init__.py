"""shardflow: a workflow engine built for throughput.

Define workflows as graphs of async steps and run them in process with
:class:`LocalExecutionEngine`, or by the million across worker processes with the batch
executor (``shardflow run`` or :class:`BatchExecutor`).
"""

from typing import TYPE_CHECKING, Any

# First, for its effect: Ctrl-C during the command's imports exits 130, with no traceback.
from shardflow import _interrupt  # noqa: F401
from shardflow._clock import Clock, FakeClock, LoopClock
from shardflow._types import WorkflowStatus
from shardflow.context import WorkflowContext
from shardflow.engine.local import LocalExecutionEngine
from shardflow.engine.records import ErrorInfo, StepRecord, WorkflowInstance
from shardflow.errors import (
    ConfigError,
    ContextValueError,
    GroupFailedError,
    InputError,
    InstanceNotFoundError,
    MergeConflictError,
    RaceLostError,
    ShardflowError,
    StepTimeoutError,
    TaskAlreadyCompletedError,
    TaskNotFoundError,
    TaskValidationError,
    ValidationProblem,
    WorkerStartError,
    WorkflowLoadError,
    WorkflowNotFoundError,
    WorkflowValidationError,
)
from shardflow.model.definition import Edge, WorkflowDefinition
from shardflow.model.groups import ParallelGroup, RaceGroup
from shardflow.model.registry import WorkflowRegistry
from shardflow.model.steps import BaseHumanStep, BaseMachineStep, BaseStep
from shardflow.model.tasks import HumanTask
from shardflow.store.tasks import SQLiteTaskStore

__version__ = "0.1.0"

if TYPE_CHECKING:
    from shardflow.run.executor import BatchExecutor, BatchResult, run_batch

_LAZY = {"BatchExecutor", "BatchResult", "run_batch"}
"""Names of the batch layer, imported on first use: ``import shardflow`` for an in-process
workflow need not load the process pool, the coordinator and their imports (~50 ms)."""


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from shardflow.run import executor

        return getattr(executor, name)
    raise AttributeError(f"module 'shardflow' has no attribute {name!r}")

__all__ = [
    "BaseHumanStep",
    "BaseMachineStep",
    "BaseStep",
    "BatchExecutor",
    "BatchResult",
    "Clock",
    "ConfigError",
    "ContextValueError",
    "Edge",
    "ErrorInfo",
    "FakeClock",
    "GroupFailedError",
    "HumanTask",
    "InputError",
    "InstanceNotFoundError",
    "LocalExecutionEngine",
    "LoopClock",
    "MergeConflictError",
    "ParallelGroup",
    "RaceGroup",
    "RaceLostError",
    "SQLiteTaskStore",
    "ShardflowError",
    "StepRecord",
    "StepTimeoutError",
    "TaskAlreadyCompletedError",
    "TaskNotFoundError",
    "TaskValidationError",
    "ValidationProblem",
    "WorkerStartError",
    "WorkflowContext",
    "WorkflowDefinition",
    "WorkflowInstance",
    "WorkflowLoadError",
    "WorkflowNotFoundError",
    "WorkflowRegistry",
    "WorkflowStatus",
    "WorkflowValidationError",
    "run_batch",
]
