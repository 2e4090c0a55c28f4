"""Bad input: each gets its own ShardflowError subclass, naming the offender in the message and
in an attribute. A definition's problems are all listed in one WorkflowValidationError, each a
sentence (``str``) that also carries ``kind`` and the ``names`` it concerns."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from engine.guide.approvals import LegalApproval
from engine.helpers import engine_for, single, step, within, writer
from shardflow import (
    BaseMachineStep,
    ContextValueError,
    Edge,
    InvalidConditionError,
    ParallelGroup,
    RaceGroup,
    ShardflowError,
    TaskAlreadyCompletedError,
    TaskNotFoundError,
    TaskValidationError,
    ValidationProblem,
    WorkflowContext,
    WorkflowDefinition,
    WorkflowNotFoundError,
    WorkflowRegistry,
    WorkflowStatus,
    WorkflowValidationError,
)


def chain(*names: str, edges: list[Edge] | None = None, initial: str | None = None, **options: Any
          ) -> WorkflowDefinition:
    """Steps ``names`` linked one after the other (or by ``edges``)."""
    steps = {name: writer(name) for name in names}
    links = edges if edges is not None else [Edge(a, b) for a, b in itertools.pairwise(names)]
    return WorkflowDefinition(name="bad", steps=steps, edges=links, initial_step=initial or names[0],
                              terminal_steps=set(), **options)


def rejected(definition: WorkflowDefinition) -> WorkflowValidationError:
    """The error registering ``definition`` raises (and ``check`` raises the same problems)."""
    with pytest.raises(WorkflowValidationError) as caught:
        WorkflowRegistry().register_definition(definition)
    error = caught.value
    assert isinstance(error, ShardflowError)
    assert error.workflow == definition.name
    assert definition.validate() == error.problems
    for problem in error.problems:
        assert problem in str(error)
    return error


def only(error: WorkflowValidationError, kind: str) -> ValidationProblem:
    found = [p for p in error.problems if p.kind == kind]
    assert len(found) == 1, error.problems
    return found[0]


# The sentences follow litestar-workflows' ("Initial step 'x' not found in steps", "Edge 0:
# source step 'x' not found"), so code that searches them keeps working, with shardflow's
# extras: the edge's index and ends, and a did-you-mean hint.
def test_an_edge_to_an_unknown_node() -> None:
    error = rejected(chain("a", "b", edges=[Edge("a", "b"), Edge("b", "ghost")]))
    problem = only(error, "unknown_node")
    assert problem.names == ("ghost",)
    assert problem == "Edge #1 'b' -> 'ghost': target step 'ghost' not found in steps"
    assert problem in str(error)


def test_an_edge_from_an_unknown_node() -> None:
    error = rejected(chain("alpha", "b", edges=[Edge("alpha", "b"), Edge("alpah", "b")]))
    problem = only(error, "unknown_node")
    assert problem.names == ("alpah",)
    assert problem == ("Edge #1 'alpah' -> 'b': source step 'alpah' not found in steps "
                       "(did you mean 'alpha'?)")


def test_a_missing_initial_step() -> None:
    error = rejected(chain("a", "b", initial="begin"))
    problem = only(error, "unknown_initial_step")
    assert problem.names == ("begin",)
    assert problem == "Initial step 'begin' not found in steps"


def test_a_missing_terminal_step() -> None:
    workflow = WorkflowDefinition(name="bad", steps={"check": writer("check")}, edges=[],
                                  initial_step="check", terminal_steps={"chek", "done"})
    error = rejected(workflow)
    assert sorted(error.problems) == [
        "Terminal step 'chek' not found in steps (did you mean 'check'?)",
        "Terminal step 'done' not found in steps"]
    assert {p.kind for p in error.problems} == {"unknown_terminal"}


def test_a_terminal_step_nothing_reaches_is_not_a_problem_and_never_runs(run: Any) -> None:
    """A terminal is a sink, so no edge leaves it and no join waits on it: an instance ends
    without it, as litestar-workflows allows. Any other unreachable node is a problem."""
    workflow = WorkflowDefinition(
        name="spare_end", steps={"a": writer("a", a=1), "b": writer("b", b=2), "spare": writer("spare", s=3)},
        edges=[Edge("a", "b")], initial_step="a", terminal_steps={"b", "spare"})
    assert workflow.validate() == []
    instance = run(within(engine_for(workflow).start_workflow("spare_end", {})))
    assert instance.status == WorkflowStatus.COMPLETED
    assert instance.context.data == {"a": 1, "b": 2}
    assert [r.node for r in instance.history] == ["a", "b"]


def test_an_unreachable_node() -> None:
    error = rejected(chain("a", "b", "island", edges=[Edge("a", "b")]))
    problem = only(error, "unreachable")
    assert problem.names == ("island",)
    assert problem == "Step 'island' is unreachable from the initial step 'a'"


def test_a_cycle_is_named_node_by_node() -> None:
    error = rejected(chain("start", "a", "b", "c", edges=[
        Edge("start", "a"), Edge("a", "b"), Edge("b", "c"), Edge("c", "a")]))
    problem = only(error, "cycle")
    assert problem.names == ("a", "b", "c", "a")
    assert "a -> b -> c -> a" in problem


def test_a_self_loop_is_a_cycle() -> None:
    error = rejected(chain("a", "b", edges=[Edge("a", "b"), Edge("b", "b")]))
    assert only(error, "cycle").names == ("b", "b")


def test_a_string_condition_outside_the_grammar_fails_where_the_edge_is_written() -> None:
    with pytest.raises(InvalidConditionError, match=r"^edge 'a' -> 'b': condition 'ctx.approved' "
                                                    r"is refused: 'ctx' may only be used as"):
        Edge("a", "b", condition="ctx.approved")


def test_a_non_callable_condition_is_rejected() -> None:
    error = rejected(chain("a", "b", edges=[Edge("a", "b", condition=True)]))  # type: ignore[arg-type]
    assert only(error, "bad_condition").names == ("a", "b")


def test_one_step_instance_used_for_two_nodes() -> None:
    shared = writer("shared")
    workflow = WorkflowDefinition(name="bad", steps={"first": shared, "second": shared, "third": writer("t")},
                                  edges=[Edge("first", "second"), Edge("second", "third")],
                                  initial_step="first", terminal_steps={"third"})
    problem = only(rejected(workflow), "reused_step")
    assert problem.names == ("first", "second")
    assert "'first'" in problem and "'second'" in problem


def test_one_step_instance_used_as_a_node_and_as_a_branch() -> None:
    shared = writer("shared")
    workflow = WorkflowDefinition(name="bad", steps={"node": shared, "group": ParallelGroup(shared, writer("x"))},
                                  edges=[Edge("node", "group")], initial_step="node", terminal_steps={"group"})
    assert only(rejected(workflow), "reused_step").names == ("node", "group/shared")


def test_a_terminal_step_must_be_a_sink() -> None:
    workflow = chain("a", "b")
    workflow.terminal_steps = {"a"}
    assert only(rejected(workflow), "terminal_not_sink").names == ("a",)


class SyncStep(BaseMachineStep):
    name = "sync"

    def execute(self, context: WorkflowContext) -> None:  # type: ignore[override]
        context.set("x", 1)


class BadPolicies(BaseMachineStep):
    name = "bad_policies"
    timeout_seconds = 0
    retries = -1

    async def execute(self, context: WorkflowContext) -> None: ...


class BadSchema(LegalApproval):
    form_schema = {"type": "no-such-type"}


GROUP_CASES: list[tuple[str, Callable[[], Any], str, tuple[str, ...]]] = [
    ("no_branches", lambda: ParallelGroup(), "no_branches", ("node",)),
    ("duplicate_branch", lambda: ParallelGroup(writer("x"), writer("x")), "duplicate_branch", ("node", "x")),
    ("human_in_race", lambda: RaceGroup(LegalApproval(), writer("y")), "human_in_race",
     ("node", "legal_approval")),
    ("human_nested", lambda: ParallelGroup(ParallelGroup(LegalApproval(), name="inner"), writer("y")),
     "human_nested", ("node/inner/legal_approval",)),
    ("max_concurrent", lambda: ParallelGroup(writer("x"), max_concurrent=0), "bad_max_concurrent", ("node",)),
    ("min_success", lambda: ParallelGroup(writer("x"), min_success=2), "bad_min_success", ("node",)),
    ("human_callback", lambda: ParallelGroup(writer("x"), callback=LegalApproval()), "bad_callback", ("node",)),
    ("not_a_step", lambda: print, "not_a_step", ("node",)),
    ("sync_execute", SyncStep, "execute_not_async", ("node",)),
    ("bad_timeout", BadPolicies, "bad_timeout", ("node",)),
    ("bad_retries", BadPolicies, "bad_retries", ("node",)),
    ("bad_form_schema", BadSchema, "bad_form_schema", ("node",)),
]


@pytest.mark.parametrize(("make", "kind", "names"), [c[1:] for c in GROUP_CASES], ids=[c[0] for c in GROUP_CASES])
def test_bad_nodes(make: Callable[[], Any], kind: str, names: tuple[str, ...]) -> None:
    problem = only(rejected(single(make())), kind)
    assert problem.names == names
    for name in names:
        assert repr(name) in problem


def test_bad_merge_rules() -> None:
    error = rejected(single(writer("x"), merge_policy="first_wins", reducers={"items": "concat", "n": 3}))
    assert only(error, "bad_merge_policy").names == ("first_wins",)
    assert only(error, "unknown_reducer").names == ("items",)
    assert only(error, "bad_reducer").names == ("n",)


def test_every_problem_is_listed_in_one_error() -> None:
    shared = writer("shared")
    workflow = WorkflowDefinition(
        name="many_problems",
        steps={"a": shared, "b": shared, "c": writer("c"), "island": writer("island"), "d": writer("d")},
        edges=[Edge("a", "b"), Edge("b", "c"), Edge("c", "b", condition="yes"),
               Edge("c", "ghost"), Edge("c", "d")],
        initial_step="a",
        terminal_steps={"c"},
    )
    error = rejected(workflow)
    kinds = sorted(p.kind for p in error.problems)
    assert kinds == sorted(["reused_step", "unknown_node", "terminal_not_sink", "cycle",
                            "unreachable"])
    assert only(error, "cycle").names == ("b", "c", "b")
    assert only(error, "unreachable").names == ("island",)
    assert "(5 problems)" in str(error)


def test_a_missing_initial_step_does_not_also_make_every_node_unreachable() -> None:
    error = rejected(chain("a", "b", initial="nope"))
    assert [p.kind for p in error.problems] == ["unknown_initial_step"]


def test_a_valid_definition_has_no_problems() -> None:
    assert chain("a", "b", "c").validate() == []


# -- bad input at run time ------------------------------------------------------------------------
def test_unknown_workflow_name_or_version(run: Any) -> None:
    async def main() -> None:
        engine = engine_for(single(writer("x"), name="known"))
        with pytest.raises(WorkflowNotFoundError) as name_error:
            await engine.start_workflow("unknown")
        assert (name_error.value.name, name_error.value.version) == ("unknown", None)
        assert "'unknown'" in str(name_error.value)
        with pytest.raises(WorkflowNotFoundError) as version_error:
            await engine.start_workflow("known", version="7.0.0")
        assert (version_error.value.name, version_error.value.version) == ("known", "7.0.0")
        assert "'known'" in str(version_error.value) and "'7.0.0'" in str(version_error.value)

    run(main())


def test_non_json_initial_data(run: Any) -> None:
    async def main() -> None:
        engine = engine_for(single(writer("x"), name="known"))
        with pytest.raises(ContextValueError) as caught:
            await engine.start_workflow("known", {"ok": 1, "tags": {"a", "b"}})
        assert (caught.value.key, caught.value.step) == ("tags", None)
        assert "'tags'" in str(caught.value)
        assert engine.list_instances() == []

    run(main())


def test_non_json_value_written_by_a_step_run_with_execute_step(run: Any) -> None:
    async def body(context: WorkflowContext) -> None:
        context.set("result.raw", b"bytes")

    async def main() -> None:
        engine = engine_for()
        context = WorkflowContext()
        with pytest.raises(ContextValueError) as caught:
            await engine.execute_step(step("parse", body), context)
        assert (caught.value.key, caught.value.step) == ("result.raw", "parse")
        assert "'result.raw'" in str(caught.value) and "'parse'" in str(caught.value)
        assert "result" not in context

    run(main())


def test_human_task_input_errors(run: Any) -> None:
    async def main() -> None:
        engine = engine_for(single(LegalApproval(), name="legal"))
        instance = await within(engine.start_workflow("legal"))
        (task,) = engine.pending_tasks(instance.id)
        with pytest.raises(TaskValidationError) as invalid:
            await engine.complete_human_task(task.id, {"approved": "yes", "concerns": 3})
        assert invalid.value.task_id == task.id and task.id in str(invalid.value)
        assert len(invalid.value.violations) == 2
        with pytest.raises(TaskNotFoundError) as unknown:
            await engine.complete_human_task("task-x", {"approved": True})
        assert unknown.value.task_id == "task-x" and "'task-x'" in str(unknown.value)
        await engine.complete_human_task(task.id, {"approved": True})
        with pytest.raises(TaskAlreadyCompletedError) as again:
            await engine.complete_human_task(task.id, {"approved": True})
        assert again.value.task_id == task.id and task.id in str(again.value)

    run(main())
