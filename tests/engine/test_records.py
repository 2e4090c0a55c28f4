"""The instance record's fast constructor agrees with the dataclass it stands in for."""

from __future__ import annotations

from dataclasses import fields

from shardflow import WorkflowContext, WorkflowStatus
from shardflow.engine.records import WorkflowInstance


def test_running_builds_what_the_class_call_builds() -> None:
    """``WorkflowInstance.running`` (what ``start_workflow`` calls, no class call) sets every
    field as ``WorkflowInstance(...)`` with the same arguments does: a field added to the
    dataclass and forgotten there fails this test."""
    context = WorkflowContext({"id": 1}, instance_id="i-1")
    steps: list = []
    built = WorkflowInstance("i-1", "flow", "2", context, WorkflowStatus.RUNNING, None, steps,
                             1234.5)
    fast = WorkflowInstance.running("i-1", "flow", "2", context, steps, 1234.5)
    for field in fields(WorkflowInstance):
        assert getattr(fast, field.name) == getattr(built, field.name), field.name
    assert fast.steps is steps and fast.context is context  # shared, not copied
    assert fast.status is WorkflowStatus.RUNNING and not fast.is_finished
