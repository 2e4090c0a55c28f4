"""Steps written the litestar-workflows way (constructor arguments) and the guide's way (class
attributes) are the same steps: same attributes, same kind, and both run in an engine."""

from __future__ import annotations

from typing import Any

import pytest

from engine.helpers import engine_for, within
from shardflow import (
    BaseHumanStep,
    BaseMachineStep,
    Edge,
    StepType,
    WorkflowContext,
    WorkflowDefinition,
    WorkflowStatus,
)


class Double(BaseMachineStep):
    """One class, used for several nodes under different names."""

    async def execute(self, context: WorkflowContext) -> None:
        context.set(f"{self.name}_out", context.get("x", 1) * 2)


class Approve(BaseHumanStep):
    title = "Approve (class attribute)"
    form_schema = {"type": "object"}


def test_constructor_arguments_set_name_and_description_on_the_instance() -> None:
    a, b = Double(name="first", description="doubles x"), Double("second")
    assert (a.name, a.description, a.step_name) == ("first", "doubles x", "first")
    assert (b.name, b.description) == ("second", "")
    assert Double.name == "" and Double().step_name == "Double"  # the class stays the default


def test_human_step_constructor_takes_litestar_workflows_arguments_in_order() -> None:
    schema = {"type": "object", "required": ["ok"], "properties": {"ok": {"type": "boolean"}}}
    step = BaseHumanStep("review", "Please review", "checks the order", schema, "reviewer")
    assert (step.name, step.title, step.description) == ("review", "Please review", "checks the order")
    assert step.form_schema == schema and step.assignee_key == "reviewer"


def test_class_attributes_stay_in_force_where_no_argument_overrides_them() -> None:
    plain, renamed = Approve(), Approve(name="legal", title="Legal sign-off")
    assert (plain.title, plain.form_schema) == ("Approve (class attribute)", {"type": "object"})
    assert (renamed.name, renamed.title, renamed.form_schema) == (
        "legal", "Legal sign-off", {"type": "object"})


def test_a_subclass_constructor_passes_name_and_description_up() -> None:
    class Scaled(BaseMachineStep):
        def __init__(self, name: str, factor: int) -> None:
            super().__init__(name, f"times {factor}")
            self.factor = factor

    step = Scaled("triple", 3)
    assert (step.name, step.description, step.factor) == ("triple", "times 3", 3)


def test_every_step_says_its_kind() -> None:
    assert Double().step_type is StepType.MACHINE and Approve().step_type is StepType.HUMAN
    assert [str(kind) for kind in StepType] == ["machine", "human", "webhook", "timer", "gateway"]


@pytest.mark.parametrize("hook", ["can_execute", "on_success", "on_failure"])
def test_the_hooks_default_to_allowing_and_doing_nothing(run: Any, hook: str) -> None:
    ctx = WorkflowContext({"a": 1})
    args = {"can_execute": (), "on_success": ({"r": 1},), "on_failure": (ValueError("x"),)}[hook]
    result = run(getattr(Double(), hook)(ctx, *args))
    assert result is (True if hook == "can_execute" else None)
    assert ctx.data == {"a": 1} and ctx.writes() == {}


def test_one_class_runs_as_two_nodes_under_its_constructor_names(run: Any) -> None:
    definition = WorkflowDefinition(
        name="doubles", steps={"one": Double(name="first"), "two": Double(name="second")},
        edges=[Edge("one", "two")], initial_step="one")
    engine = engine_for(definition)
    instance = run(within(engine.start_workflow("doubles", {"x": 5})))
    assert instance.status is WorkflowStatus.COMPLETED
    assert (instance.context.get("first_out"), instance.context.get("second_out")) == (10, 10)


def test_an_edge_may_name_its_ends_by_step_class_or_step() -> None:
    class Submit(BaseMachineStep):
        name = "submit"

    assert Edge(Submit, "review") == Edge("submit", "review")
    assert Edge("review", Double(name="second")).target == "second"
    assert Edge(Double, "x").get_source_name() == "Double"  # a class without a name
    with pytest.raises(TypeError, match="edge end must be a node id"):
        Edge(42, "x")  # type: ignore[arg-type]
