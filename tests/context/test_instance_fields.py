"""WorkflowContext made the litestar-workflows way (its seven dataclass fields), beside the
guide's form: the instance's fields are shared by its forks, while data stays copy-on-write."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from shardflow import ContextValueError, StepExecution, StepStatus, WorkflowContext

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def litestar_context(**extra: object) -> WorkflowContext:
    return WorkflowContext(workflow_id="wf-1", instance_id="inst-1", data={"n": 1},
                           metadata={"by": "ada"}, current_step="start", step_history=[],
                           started_at=NOW, **extra)


def ran(step: str, result: object = None, status: str = StepStatus.SUCCEEDED) -> StepExecution:
    return StepExecution(step_name=step, status=status, started_at=NOW, completed_at=NOW,
                         result=result)


def test_the_seven_fields_and_the_optional_two_are_kept() -> None:
    ids = uuid4(), uuid4()
    ctx = WorkflowContext(*ids, {"k": "v"}, {"env": "test"}, "first", [], NOW,
                          user_id="u1", tenant_id="t1")
    assert (ctx.workflow_id, ctx.instance_id, ctx.current_step) == (*ids, "first")
    assert (ctx.data, ctx.metadata, ctx.step_history) == ({"k": "v"}, {"env": "test"}, [])
    assert (ctx.started_at, ctx.user_id, ctx.tenant_id) == (NOW, "u1", "t1")
    assert litestar_context().user_id is None and litestar_context().tenant_id is None


def test_a_missing_field_is_reported_as_for_any_call() -> None:
    with pytest.raises(TypeError, match="started_at"):
        WorkflowContext(workflow_id="w", instance_id="i", data={}, metadata={},  # type: ignore[call-overload]
                        current_step="s", step_history=[])
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        WorkflowContext({"a": 1}, colour="red")  # type: ignore[call-overload]


def test_the_guide_forms_are_unchanged() -> None:
    for ctx in (WorkflowContext({"a": 1}), WorkflowContext(data={"a": 1}, instance_id="i"),
                WorkflowContext({"a": 1}, instance_id="i")):
        assert ctx.data == {"a": 1} and ctx.current_step is None
        assert ctx.metadata == {} and ctx.step_history == [] and ctx.workflow_id is None
    assert WorkflowContext().data == {} and WorkflowContext(None).data == {}


def test_initial_data_obeys_the_data_contract_in_either_form() -> None:
    with pytest.raises(ContextValueError, match="'when'"):
        WorkflowContext("w", "i", {"when": NOW}, {}, "s", [], NOW)  # type: ignore[call-overload]


def test_the_last_execution_of_a_step_and_whether_it_ran() -> None:
    ctx = litestar_context()
    assert ctx.get_last_execution() is None and not ctx.has_step_executed("a")
    ctx.step_history.extend([ran("a", 1), ran("b", 2), ran("a", 3)])
    last = ctx.get_last_execution()
    assert last is not None and (last.step_name, last.result) == ("a", 3)
    first_b = ctx.get_last_execution("b")
    assert first_b is not None and first_b.result == 2
    assert ctx.has_step_executed("b") and ctx.get_last_execution("zzz") is None


def test_with_step_moves_to_a_step_in_a_fork_that_shares_the_instance_fields() -> None:
    parent = litestar_context()
    child = parent.with_step("next")
    assert (parent.current_step, child.current_step) == ("start", "next")
    assert (child.workflow_id, child.instance_id, child.started_at) == ("wf-1", "inst-1", NOW)
    child.step_history.append(ran("next"))  # one history per instance
    assert parent.has_step_executed("next")
    child.set("n", 2)  # but data is copy-on-write, as for every fork
    assert (child.get("n"), parent.get("n")) == (2, 1)
    grandchild = child.with_step("last")
    assert grandchild.get("n") == 2 and grandchild.metadata is parent.metadata


def test_a_join_result_keeps_the_instance_fields() -> None:
    parent = litestar_context()
    joined = parent.child_with({"total": 3})
    assert joined.get("total") == 3 and joined.metadata == {"by": "ada"}


def test_a_step_execution_records_outcome_and_optional_data() -> None:
    failed = StepExecution(step_name="pay", status=StepStatus.FAILED, started_at=NOW,
                           error="ValueError: declined")
    assert (failed.completed_at, failed.result, failed.input_data, failed.output_data) == (
        None, None, None, None)
    assert failed.status == "failed" and failed.error == "ValueError: declined"


def test_an_engine_made_context_keeps_its_typed_id_when_its_fields_are_first_read() -> None:
    root = WorkflowContext.initial({"a": 1}, 7)
    early = root.fork()
    assert root.metadata == {} and root.instance_id == 7  # the id survives making the fields
    root.metadata["tag"] = "x"
    late = root.fork()
    assert late.instance_id == 7 and late.metadata == {"tag": "x"}
    assert early.instance_id == 7 and early.metadata == {}  # forked before: not shared
    decoded = WorkflowContext.decoded({"a": 1}, "line-3")
    assert (decoded.instance_id, decoded.step_history) == ("line-3", [])
    decoded.instance_id = "line-4"
    assert decoded.fork().instance_id == "line-4"
