"""String edge conditions in the engine: the expression decides the edge for each instance,
as a callable condition would (the skipped side is recorded as skipped, a join after both
sides runs once), and an expression that fails on an instance's context fails that instance
naming the edge and the expression."""

from __future__ import annotations

from typing import Any

import pytest

from engine.helpers import engine_for, history_of, within, writer
from shardflow import Edge, WorkflowDefinition, WorkflowStatus


def decision() -> WorkflowDefinition:
    return WorkflowDefinition(
        name="decision",
        steps={"review": writer("review", reviewed=True), "publish": writer("publish", outcome="published"),
               "reject": writer("reject", outcome="rejected"), "close": writer("close", closed=True)},
        edges=[Edge("review", "publish", "approved and order.total < 1000"),
               Edge("review", "reject", "not (approved and order.total < 1000)"),
               Edge("publish", "close"), Edge("reject", "close")],
        initial_step="review", terminal_steps={"close"})


@pytest.mark.parametrize(("data", "taken", "skipped"), [
    ({"approved": True, "order": {"total": 10}}, "published", "reject"),
    ({"approved": True, "order": {"total": 5000}}, "rejected", "publish"),
    ({"approved": False, "order": {"total": 10}}, "rejected", "publish"),
])
def test_each_instance_takes_the_edge_its_expression_chooses(
        run: Any, data: dict[str, Any], taken: str, skipped: str) -> None:
    engine = engine_for(decision())
    instance = run(within(engine.start_workflow("decision", data)))
    assert instance.status == WorkflowStatus.COMPLETED
    assert instance.context.get("outcome") == taken
    assert [r.status for r in history_of(instance, skipped)] == ["skipped"]
    assert [r.status for r in history_of(instance, "close")] == ["completed"]  # the join, once


def test_an_expression_failing_on_the_context_fails_the_instance_naming_the_edge(run: Any) -> None:
    engine = engine_for(decision())
    instance = run(within(engine.start_workflow("decision", {"approved": True})))  # no order.total
    assert instance.status == WorkflowStatus.FAILED
    assert "'review' -> 'publish'" in instance.error.message
    assert "'approved and order.total < 1000' raised TypeError" in instance.error.message
