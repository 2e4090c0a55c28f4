"""WorkflowRegistry as litestar-workflows code uses it: workflow classes, versions, removal."""

from __future__ import annotations

import pytest

from shardflow import (
    BaseMachineStep,
    ShardflowError,
    WorkflowDefinition,
    WorkflowNotFoundError,
    WorkflowRegistry,
    WorkflowValidationError,
)


class Noop(BaseMachineStep):
    async def execute(self, context: object) -> None:
        return None


def definition(name: str = "orders", version: str = "1.0.0") -> WorkflowDefinition:
    return WorkflowDefinition(name=name, version=version, steps={"a": Noop()}, edges=[],
                              initial_step="a")


def workflow_class(defn: WorkflowDefinition) -> type:
    class Workflow:
        @classmethod
        def get_definition(cls) -> WorkflowDefinition:
            return defn

    return Workflow


def test_register_takes_a_workflow_class_and_remembers_it_per_version() -> None:
    registry = WorkflowRegistry()
    v1, v2 = workflow_class(definition()), workflow_class(definition(version="2.0.0"))
    registry.register(v1)
    registry.register(v2)
    assert registry.get_definition("orders").version == "2.0.0"
    assert registry.get_workflow_class("orders") is v2
    assert registry.get_workflow_class("orders", "1.0.0") is v1


def test_register_validates_like_register_definition() -> None:
    broken = WorkflowDefinition(name="broken", steps={"a": Noop()}, edges=[], initial_step="zz")
    with pytest.raises(WorkflowValidationError, match="Initial step 'zz'"):
        WorkflowRegistry().register(workflow_class(broken))


def test_register_refuses_what_is_neither_a_definition_nor_a_workflow_class() -> None:
    with pytest.raises(TypeError, match="get_definition"):
        WorkflowRegistry().register(object())  # type: ignore[arg-type]


def test_a_version_registered_as_a_definition_has_no_class() -> None:
    registry = WorkflowRegistry()
    registry.register(definition())
    with pytest.raises(WorkflowNotFoundError):
        registry.get_workflow_class("orders")


def test_versions_are_listed_and_the_highest_is_active() -> None:
    registry = WorkflowRegistry()
    for version in ["2.0.0", "10.0.0", "1.10.0", "1.2.0"]:
        registry.register(workflow_class(definition(version=version)))
    registry.register(definition("other"))
    assert registry.get_versions("orders") == ["1.2.0", "1.10.0", "2.0.0", "10.0.0"]
    assert [(d.name, d.version) for d in registry.list_definitions()] == [
        ("orders", "10.0.0"), ("other", "1.0.0")]
    assert len(registry.list_definitions(active_only=False)) == 5
    assert registry.has_workflow("orders") and registry.has_workflow("orders", "1.10.0")
    assert not registry.has_workflow("orders", "3.0.0") and not registry.has_workflow("nope")


def test_unregister_one_version_then_all() -> None:
    registry = WorkflowRegistry()
    for version in ["1.0.0", "2.0.0", "3.0.0"]:
        registry.register(workflow_class(definition(version=version)))
    registry.unregister("orders", "3.0.0")
    assert registry.get_definition("orders").version == "2.0.0"  # the next highest is active
    with pytest.raises(WorkflowNotFoundError):
        registry.get_workflow_class("orders", "3.0.0")
    registry.unregister("orders")
    assert not registry.has_workflow("orders") and "orders" not in registry
    registry.unregister("orders")  # forgetting what is not there does nothing
    registry.unregister("never", "1.0.0")


@pytest.mark.parametrize("lookup", [
    lambda r: r.get_definition("missing"),
    lambda r: r.get_definition("orders", "9.9.9"),
    lambda r: r.get_versions("missing"),
    lambda r: r.get_workflow_class("missing"),
])
def test_unknown_names_raise_an_error_that_is_also_a_key_error(lookup: object) -> None:
    registry = WorkflowRegistry()
    registry.register(definition())
    with pytest.raises(WorkflowNotFoundError) as raised:
        lookup(registry)  # type: ignore[operator]
    assert isinstance(raised.value, KeyError) and isinstance(raised.value, ShardflowError)
    assert "not found" in str(raised.value) and not str(raised.value).startswith('"')
