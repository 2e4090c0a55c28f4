"""The event bus: subscribers by type, in order, sync and async, isolated from each other's
failures; litestar-workflows' ``emit(event_type, **fields)`` protocol; JSON-ready events."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import orjson
import pytest

from shardflow import EventBus
from shardflow.events import (
    EVENT_TYPES,
    StepCompleted,
    StepSkipped,
    WorkflowCanceled,
    WorkflowCancelled,
    WorkflowEvent,
    WorkflowStarted,
)

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_the_issue_lists_event_types_exist_under_dotted_names() -> None:
    assert set(EVENT_TYPES) >= {
        "workflow.started", "workflow.completed", "workflow.failed", "workflow.canceled",
        "step.started", "step.completed", "step.failed", "step.skipped",
        "human_task.created", "human_task.completed"}
    assert WorkflowCanceled is WorkflowCancelled


def test_subscribers_get_the_events_they_asked_for_in_subscription_order(run: Any) -> None:
    bus, seen = EventBus(), []
    bus.subscribe(lambda e: seen.append(("all", e.event_type)))
    bus.subscribe(lambda e: seen.append(("steps", e.event_type)), StepCompleted, "step.skipped")

    async def later(event: WorkflowEvent) -> None:
        seen.append(("async", event.event_type))

    bus.subscribe(later, "workflow.started")

    async def main() -> None:
        await bus.publish(WorkflowStarted(instance_id="i", workflow_name="w", workflow_version="1"))
        await bus.publish(StepSkipped(instance_id="i", step_name="s", reason="guard"))

    run(main())
    assert seen == [("all", "workflow.started"), ("async", "workflow.started"),
                    ("all", "step.skipped"), ("steps", "step.skipped")]


def test_emit_builds_the_event_from_its_name_and_fields(run: Any) -> None:
    bus, seen = EventBus(), []
    bus.subscribe(seen.append)
    instance = uuid4()
    # shardflow's former spelling is still understood; the event is litestar-workflows'
    run(bus.emit("workflow.cancelled", instance_id=instance, reason="withdrawn", canceled_by="ada"))
    (event,) = seen
    assert isinstance(event, WorkflowCancelled) and event.event_type == "workflow.canceled"
    assert (event.instance_id, event.reason, event.canceled_by) == (instance, "withdrawn", "ada")
    assert event.timestamp.tzinfo is UTC


def test_bad_event_names_and_fields_are_errors_naming_them(run: Any) -> None:
    bus = EventBus()
    with pytest.raises(ValueError, match=r"unknown event type 'step\.exploded'.*step\.completed"):
        run(bus.emit("step.exploded", instance_id="i"))
    with pytest.raises(TypeError, match=r"'step\.skipped'.*colour"):
        run(bus.emit("step.skipped", instance_id="i", step_name="s", colour="red"))
    with pytest.raises(ValueError, match="unknown event type"):
        bus.subscribe(print, "workflow.exploded")


def test_a_failing_subscriber_is_logged_and_the_others_still_run(
        run: Any, caplog: pytest.LogCaptureFixture) -> None:
    bus, seen = EventBus(), []

    def broken(event: WorkflowEvent) -> None:
        raise RuntimeError("subscriber bug")

    bus.subscribe(broken)
    bus.subscribe(seen.append)
    with caplog.at_level(logging.ERROR, logger="shardflow.events"):
        run(bus.emit("step.skipped", instance_id="i-9", step_name="s"))
    assert len(seen) == 1
    assert "step.skipped of instance i-9" in caplog.text and "subscriber bug" in caplog.text


def test_unsubscribe_stops_delivery(run: Any) -> None:
    bus, seen = EventBus(), []
    stop = bus.subscribe(seen.append)
    run(bus.emit("step.skipped", instance_id="i", step_name="a"))
    stop()
    stop()  # twice is harmless
    run(bus.emit("step.skipped", instance_id="i", step_name="b"))
    assert [e.step_name for e in seen] == ["a"]  # type: ignore[attr-defined]


def test_an_event_is_a_json_ready_dict() -> None:
    instance = uuid4()
    event = StepCompleted(instance_id=instance, timestamp=NOW, step_name="pay",
                          status="succeeded", result={"paid": True}, duration_seconds=0.5)
    as_dict = event.to_dict()
    assert as_dict == {"event": "step.completed", "instance_id": str(instance),
                       "timestamp": "2026-01-02T03:04:05+00:00", "step_name": "pay",
                       "status": "succeeded", "result": {"paid": True}, "output_data": None,
                       "duration_seconds": 0.5}
    assert orjson.loads(orjson.dumps(as_dict)) == as_dict
