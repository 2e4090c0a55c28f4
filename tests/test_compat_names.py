"""litestar-workflows' names for statuses and errors: the same members and classes under both
spellings, errors catchable by either root, and ``WorkflowValidationError(errors)``."""

from __future__ import annotations

import pickle

import pytest

import shardflow
from shardflow import (
    HumanTaskError,
    InstanceNotFoundError,
    InvalidTransitionError,
    ShardflowError,
    StepExecutionError,
    StepStatus,
    TaskAlreadyCompletedError,
    TaskNotFoundError,
    TaskValidationError,
    UnauthorizedTaskError,
    WorkflowAlreadyCompletedError,
    WorkflowInstanceNotFoundError,
    WorkflowNotFoundError,
    WorkflowsError,
    WorkflowStatus,
    WorkflowValidationError,
)


def test_canceled_is_another_name_of_cancelled_and_reads_back() -> None:
    for enum in (WorkflowStatus, StepStatus):
        assert enum.CANCELED == "canceled"  # litestar-workflows' value: stored rows compare equal
        assert enum.CANCELED is enum.CANCELLED  # type: ignore[attr-defined]
        assert enum("canceled") is enum.CANCELLED and enum("cancelled") is enum.CANCELLED  # type: ignore[attr-defined]
    with pytest.raises(ValueError):
        WorkflowStatus("cancel")
    assert WorkflowStatus("paused") is WorkflowStatus.PAUSED


def test_step_statuses_are_litestar_workflows_lifecycle() -> None:
    assert [s.value for s in StepStatus] == ["pending", "scheduled", "running", "waiting",
                                             "succeeded", "failed", "canceled", "skipped"]


def test_every_error_is_caught_by_either_root_name() -> None:
    assert WorkflowsError is ShardflowError
    assert WorkflowInstanceNotFoundError is InstanceNotFoundError
    for error in (HumanTaskError, StepExecutionError, InvalidTransitionError,
                  WorkflowAlreadyCompletedError, UnauthorizedTaskError):
        assert issubclass(error, WorkflowsError)
    for error in (TaskNotFoundError, TaskAlreadyCompletedError, TaskValidationError,
                  UnauthorizedTaskError):
        assert issubclass(error, HumanTaskError)


def test_lookups_that_miss_are_key_errors() -> None:
    for error in (WorkflowNotFoundError("w", "2.0"), InstanceNotFoundError("i"),
                  TaskNotFoundError("t")):
        assert isinstance(error, KeyError)
    assert str(WorkflowNotFoundError("w", "2.0")) == "Workflow 'w' version '2.0' not found"


def test_validation_error_takes_a_list_of_errors_alone() -> None:
    error = WorkflowValidationError(["no initial step", "edge to nowhere"])
    assert error.errors == ["no initial step", "edge to nowhere"] == error.problems
    assert "no initial step" in str(error) and "edge to nowhere" in str(error)
    named = WorkflowValidationError("orders", ["cycle: a -> a"])
    assert named.workflow == "orders" and "'orders'" in str(named)
    copy = pickle.loads(pickle.dumps(named))
    assert (copy.workflow, copy.errors, str(copy)) == ("orders", ["cycle: a -> a"], str(named))


def test_errors_carry_what_they_name() -> None:
    cause = ValueError("declined")
    step = StepExecutionError("charge", cause=cause)
    assert (step.step_name, step.cause) == ("charge", cause) and "declined" in str(step)
    move = InvalidTransitionError("a", "b", reason="no such edge")
    assert (move.from_step, move.to_step, move.reason) == ("a", "b", "no such edge")
    done = WorkflowAlreadyCompletedError("i-1", "completed")
    assert (done.instance_id, done.status) == ("i-1", "completed")
    denied = UnauthorizedTaskError("t-1", "bob")
    assert (denied.task_id, denied.user_id) == ("t-1", "bob")
    assert "'bob'" in str(denied) and "'t-1'" in str(denied)


def test_the_litestar_workflows_names_are_public() -> None:
    names = {"StepType", "StepStatus", "StepExecution", "WorkflowGraph", "EventBus",
             "WorkflowsError", "HumanTaskError", "UnauthorizedTaskError", "StepExecutionError",
             "InvalidTransitionError", "WorkflowAlreadyCompletedError",
             "WorkflowInstanceNotFoundError"}
    assert names <= set(shardflow.__all__)
