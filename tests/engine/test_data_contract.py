"""The data contract in process: contexts hold JSON as orjson writes it, nothing else.

Every value here would otherwise come back different from a snapshot or a batch result file
(NaN as null, a tuple as a list, a date as a string) or could not be written at all (a 65-bit
integer), so it is refused where it is written, naming the step, the key and where inside the
value the problem is.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

import pytest

from engine.helpers import engine_for, single, within
from shardflow import (
    BaseHumanStep,
    BaseMachineStep,
    ContextValueError,
    TaskValidationError,
    WorkflowContext,
    WorkflowStatus,
)
from shardflow.context import MergeRules
from shardflow.jsonvalue import I64_MIN, MAX_DEPTH, U64_MAX, is_json, problem


class Colour(enum.StrEnum):
    RED = "red"


BAD: dict[str, Any] = {
    "nan": float("nan"),
    "infinity": float("inf"),
    "minus_infinity": float("-inf"),
    "two_pow_64": 2**64,
    "below_i64": -(2**63) - 1,
    "tuple": (1, 2),
    "set": {1, 2},
    "bytes": b"raw",
    "date": date(2024, 1, 2),
    "datetime": datetime(2024, 1, 2, 3, 4),
    "non_str_key": {1: "one"},
    "str_enum": Colour.RED,
    "lone_surrogate": "caf\udce9",  # what surrogateescape makes of a Latin-1 byte
    "lone_surrogate_key": {"k\ud800": 1},
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_set_refuses_a_non_json_value_naming_step_key_and_place(case: str) -> None:
    ctx = WorkflowContext({"kept": 1})
    ctx.current_step = "emit"
    for value, where in ((BAD[case], None), ({"payload": [0, BAD[case]]}, "payload[1]")):
        with pytest.raises(ContextValueError) as caught:
            ctx.set("result", value)
        assert (caught.value.key, caught.value.step) == ("result", "emit")
        assert "'result'" in str(caught.value) and "'emit'" in str(caught.value)
        if where is not None:
            assert f" at {where!r} " in str(caught.value)
    assert ctx.data == {"kept": 1}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_step_returning_a_non_json_value_fails_its_instance(run: Any, case: str) -> None:
    class Emit(BaseMachineStep):
        async def execute(self, context: WorkflowContext) -> Any:
            return {"payload": BAD[case]}

    async def main() -> Any:
        return await within(engine_for(single(Emit())).start_workflow("single"))

    instance = run(main())
    assert instance.status == WorkflowStatus.FAILED
    assert (instance.error.type, instance.error.step) == ("ContextValueError", "node")
    assert instance.error.message.startswith("context key 'node' written by step 'node' holds")
    assert " at 'payload' " in instance.error.message


@pytest.mark.parametrize("case", sorted(BAD))
def test_initial_data_is_held_to_the_same_contract(run: Any, case: str) -> None:
    class Nothing(BaseMachineStep):
        async def execute(self, context: WorkflowContext) -> None:
            return None

    async def main() -> None:
        engine = engine_for(single(Nothing()))
        for data, where in (({"order": BAD[case]}, ""), ({"order": {"items": [BAD[case]]}},
                                                          " at 'items[0]' ")):
            with pytest.raises(ContextValueError) as caught:
                await engine.start_workflow("single", data)
            assert (caught.value.key, caught.value.step) == ("order", None)
            assert "'order'" in str(caught.value) and where in str(caught.value)
        with pytest.raises(ContextValueError) as caught:
            await engine.start_workflow("single", {7: "seven"})
        assert "int key" in str(caught.value)
        assert engine.list_instances() == []

    run(main())


def test_json_edge_values_are_kept_exactly() -> None:
    edge = {"ints": [I64_MIN, U64_MAX, 0, -1], "floats": [0.0, -0.0, 1e308, 5e-324],
            "text": "naïve ☃", "flags": [True, False, None], "empty": [{}, []]}
    ctx = WorkflowContext(edge)
    ctx.set("copy", edge)
    ctx.set("deep.a.b", {"x": [1.5]})
    assert ctx.get("copy") == edge and ctx.get("deep.a.b.x") == [1.5]


def test_nesting_is_bounded_and_a_value_holding_itself_is_refused() -> None:
    def nested(levels: int) -> Any:
        value: Any = 1
        for _ in range(levels):
            value = [value]
        return value

    ctx = WorkflowContext()
    ctx.set("top", nested(MAX_DEPTH - 1))  # the context's own dict is the first level
    with pytest.raises(ContextValueError, match="more than 200 levels deep"):
        ctx.set("top", nested(MAX_DEPTH))
    ctx.set("a.b", nested(MAX_DEPTH - 2))  # each part of a dotted key is a level too
    with pytest.raises(ContextValueError, match="more than 200 levels deep"):
        ctx.set("a.b", nested(MAX_DEPTH - 1))
    looped: list[Any] = []
    looped.append(looped)
    with pytest.raises(ContextValueError, match="holding itself"):
        ctx.set("loop", looped)


def test_a_reducer_result_is_held_to_the_contract() -> None:
    base = WorkflowContext()
    left, right = base.fork(), base.fork()
    left.set("total", 1)
    right.set("total", 2)
    rules = MergeRules(reducers={"total": lambda acc, value: (acc, value)})
    with pytest.raises(ContextValueError) as caught:
        rules.merge(base, [("left", left), ("right", right)], step="join")
    assert (caught.value.key, caught.value.step) == ("total", "join")
    assert "tuple" in str(caught.value)


def test_non_json_form_data_is_a_violation_and_leaves_the_task_open(run: Any) -> None:
    class Approve(BaseHumanStep):
        title = "Approve"
        form_schema = {"type": "object", "properties": {"score": {"type": "number"}}}

    async def main() -> None:
        engine = engine_for(single(Approve()))
        instance = await within(engine.start_workflow("single"))
        (task,) = engine.pending_tasks(instance.id)
        with pytest.raises(TaskValidationError) as caught:
            await engine.complete_human_task(task.id, {"score": float("nan")})
        assert any("score" in v and "NaN" in v for v in caught.value.violations)
        assert engine.get_task(task.id).completed_at is None
        done = await within(engine.complete_human_task(task.id, {"score": 0.5}))
        assert done.status == WorkflowStatus.COMPLETED
        assert done.context.get("node.score") == 0.5

    run(main())


# -- form schemas, checked at definition time ----------------------------------------------------
FORMS_MODULE = """
from shardflow import BaseHumanStep, Edge, WorkflowDefinition


class SetInSchema(BaseHumanStep):
    title = "Tags"
    form_schema = {"type": "object", "properties": {"tags": {"default": {1, 2}}}}


class WrongSchema(BaseHumanStep):
    title = "Wrong"
    form_schema = {"type": "objekt", "properties": {"age": {"minimum": "ten"}},
                   "required": "name"}


def build():
    return WorkflowDefinition(name="forms", steps={"tags": SetInSchema(), "wrong": WrongSchema()},
                              edges=[Edge("tags", "wrong")], initial_step="tags",
                              terminal_steps={"wrong"})


workflow = build()
"""
"""Two human steps with bad form schemas: a set inside one, three meta-schema errors in the
other. A module of its own, so ``shardflow validate`` loads it as users' modules are loaded."""


def two_humans() -> Any:
    namespace: dict[str, Any] = {}
    exec(compile(FORMS_MODULE, "forms_flow.py", "exec"), namespace)
    return namespace["build"]()


def test_every_form_schema_problem_is_named_with_its_step_and_place() -> None:
    problems = two_humans().validate()
    assert [(p.kind, p.names) for p in problems] == [
        ("form_schema_not_json", ("tags",)),
        ("bad_form_schema", ("wrong",)), ("bad_form_schema", ("wrong",)),
        ("bad_form_schema", ("wrong",)),
    ]
    assert problems[0] == ("human step 'tags': form_schema is not JSON: it holds a set at "
                           "'properties.tags.default' (JSON has no sets; use a list)")
    assert problems[1].startswith("human step 'wrong': form_schema is not a valid JSON Schema at "
                                  "properties.age.minimum: 'ten' is not of type 'number'")
    assert "at required: 'name' is not of type 'array'" in problems[2]
    assert "at type: 'objekt' is not valid under any of the given schemas" in problems[3]


def test_registration_refuses_a_bad_form_schema() -> None:
    from shardflow import WorkflowRegistry, WorkflowValidationError

    with pytest.raises(WorkflowValidationError) as caught:
        WorkflowRegistry().register_definition(two_humans())
    assert len(caught.value.problems) == 4
    assert "'tags'" in str(caught.value) and "'wrong'" in str(caught.value)


def test_shardflow_validate_names_every_form_schema_problem(tmp_path: Any) -> None:
    from click.testing import CliRunner

    from shardflow.cli.main import cli

    module = tmp_path / "forms_flow.py"
    module.write_text(FORMS_MODULE)
    result = CliRunner().invoke(cli, ["validate", f"{module}:workflow"])
    assert result.exit_code == 1
    assert "4 problems" in result.output
    assert "form_schema is not JSON: it holds a set at 'properties.tags.default'" in result.output
    assert result.output.count("form_schema is not a valid JSON Schema at") == 3


def test_the_fast_check_and_the_description_agree() -> None:
    """``is_json`` (the hot path) and ``problem`` (the description) are two walks: every
    value one refuses, the other explains, at the right place."""
    good: list[Any] = [0, U64_MAX, I64_MIN, 1.5, "s", True, None, [], {}, {"a": [1, {"b": None}]}]
    for value in good:
        for wrapped in (value, [value], {"k": value}, {"k": [0, {"j": value}]}):
            assert is_json(wrapped) and problem(wrapped) is None
    for case, value in BAD.items():
        for wrapped, path in ((value, ()), ([value], (0,)), ({"k": [0, {"j": value}]},
                                                            ("k", 1, "j"))):
            found = problem(wrapped)
            assert not is_json(wrapped) and found is not None, case
            assert found.path == path, case

