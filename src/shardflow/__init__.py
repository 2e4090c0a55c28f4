"""shardflow: a workflow engine built for throughput.

Define workflows as graphs of async steps and run them in process with
:class:`LocalExecutionEngine`, or by the million across worker processes with the batch
executor (``shardflow run`` or :class:`BatchExecutor`).
"""

from typing import TYPE_CHECKING, Any

# First, for its effect: Ctrl-C during the command's imports exits 130, with no traceback.
from shardflow import _interrupt  # noqa: F401
from shardflow._clock import Clock, FakeClock, LoopClock
from shardflow._types import StepStatus, StepType, WorkflowStatus
from shardflow.context import StepExecution, WorkflowContext
from shardflow.engine.local import LocalExecutionEngine
from shardflow.engine.records import ErrorInfo, StepRecord, WorkflowInstance, WorkflowInstanceData
from shardflow.errors import (
    ConfigError,
    ContextValueError,
    GroupFailedError,
    HumanTaskError,
    InputError,
    InstanceNotFoundError,
    InstanceNotWaitingError,
    InvalidConditionError,
    InvalidTransitionError,
    MergeConflictError,
    NotWaitingAtStepError,
    RaceLostError,
    ShardflowError,
    StepExecutionError,
    StepTimeoutError,
    TaskAlreadyCompletedError,
    TaskNotFoundError,
    TaskValidationError,
    UnauthorizedTaskError,
    ValidationProblem,
    WorkerStartError,
    WorkflowAlreadyCompletedError,
    WorkflowInstanceNotFoundError,
    WorkflowLoadError,
    WorkflowNotFoundError,
    WorkflowsError,
    WorkflowValidationError,
)
from shardflow.events import EventBus
from shardflow.model.definition import Edge, WorkflowDefinition
from shardflow.model.gateways import ExclusiveGateway, ParallelGateway
from shardflow.model.graph import WorkflowGraph
from shardflow.model.groups import ConditionalGroup, ParallelGroup, RaceGroup, SequentialGroup
from shardflow.model.registry import WorkflowRegistry
from shardflow.model.steps import BaseHumanStep, BaseMachineStep, BaseStep
from shardflow.model.tasks import HumanTask
from shardflow.model.waits import TimerStep, WebhookStep
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
    "ConditionalGroup",
    "ConfigError",
    "ContextValueError",
    "Edge",
    "ErrorInfo",
    "EventBus",
    "ExclusiveGateway",
    "FakeClock",
    "GroupFailedError",
    "HumanTask",
    "HumanTaskError",
    "InputError",
    "InstanceNotFoundError",
    "InstanceNotWaitingError",
    "InvalidConditionError",
    "InvalidTransitionError",
    "LocalExecutionEngine",
    "LoopClock",
    "MergeConflictError",
    "NotWaitingAtStepError",
    "ParallelGateway",
    "ParallelGroup",
    "RaceGroup",
    "RaceLostError",
    "SQLiteTaskStore",
    "SequentialGroup",
    "ShardflowError",
    "StepExecution",
    "StepExecutionError",
    "StepRecord",
    "StepStatus",
    "StepTimeoutError",
    "StepType",
    "TaskAlreadyCompletedError",
    "TaskNotFoundError",
    "TaskValidationError",
    "TimerStep",
    "UnauthorizedTaskError",
    "ValidationProblem",
    "WebhookStep",
    "WorkerStartError",
    "WorkflowAlreadyCompletedError",
    "WorkflowContext",
    "WorkflowDefinition",
    "WorkflowGraph",
    "WorkflowInstance",
    "WorkflowInstanceData",
    "WorkflowInstanceNotFoundError",
    "WorkflowLoadError",
    "WorkflowNotFoundError",
    "WorkflowRegistry",
    "WorkflowStatus",
    "WorkflowValidationError",
    "WorkflowsError",
    "run_batch",
]
