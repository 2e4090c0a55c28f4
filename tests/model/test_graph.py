"""WorkflowGraph and the edge questions litestar-workflows code asks of a definition: what
comes next for a context, what came before, depths, paths, and which edges are taken."""

from __future__ import annotations

import pytest

from shardflow import (
    BaseMachineStep,
    Edge,
    InvalidTransitionError,
    WorkflowContext,
    WorkflowDefinition,
    WorkflowGraph,
)


class Noop(BaseMachineStep):
    async def execute(self, context: WorkflowContext) -> None:
        return None


def big(ctx: WorkflowContext) -> bool:
    return bool(ctx.get("amount", 0) > 100)


def definition(edges: list[Edge], *nodes: str, initial: str = "start") -> WorkflowDefinition:
    return WorkflowDefinition(name="g", steps={n: Noop() for n in nodes}, edges=edges,
                              initial_step=initial)


ORDER = definition([Edge("start", "check"), Edge("check", "manual", big),
                    Edge("check", "auto", lambda ctx: not big(ctx)), Edge("manual", "ship"),
                    Edge("auto", "ship")], "start", "check", "manual", "auto", "ship")


@pytest.mark.parametrize(("amount", "expected"), [(500, ["manual"]), (5, ["auto"])])
def test_next_steps_are_the_targets_whose_condition_holds(amount: int, expected: list[str]) -> None:
    ctx = WorkflowContext({"amount": amount})
    assert WorkflowGraph.from_definition(ORDER).get_next_steps("check", ctx) == expected
    assert ORDER.get_next_steps("check", ctx) == expected
    assert WorkflowGraph(ORDER).get_next_steps("ship", ctx) == []
    assert WorkflowGraph(ORDER).get_next_steps("not-a-node", ctx) == []


def test_an_edge_is_taken_as_the_engine_takes_it_by_the_truth_of_its_condition() -> None:
    ctx = WorkflowContext({"items": [1], "none": []})
    assert Edge("a", "b").evaluate_condition(ctx) is True
    assert Edge("a", "b", lambda c: c.get("items")).evaluate_condition(ctx) is True
    assert Edge("a", "b", lambda c: c.get("none")).evaluate_condition(ctx) is False


def test_a_string_condition_is_evaluated_not_taken_silently() -> None:
    edge = Edge("check", "ship", "approved")
    assert edge.evaluate_condition(WorkflowContext({"approved": True})) is True
    assert edge.evaluate_condition(WorkflowContext({"approved": False})) is False
    assert edge.evaluate_condition(WorkflowContext()) is False  # missing: None
    assert definition([Edge("start", "b", "approved")], "start", "b").validate() == []


def test_an_async_condition_cannot_be_answered_outside_a_run() -> None:
    async def later(ctx: WorkflowContext) -> bool:
        return True

    with pytest.raises(InvalidTransitionError, match="async"):
        Edge("a", "b", later).evaluate_condition(WorkflowContext())


def test_previous_steps_terminals_and_depths() -> None:
    graph = WorkflowGraph(ORDER)
    assert graph.get_previous_steps("ship") == ["manual", "auto"]
    assert graph.get_previous_steps("start") == []
    assert graph.is_terminal("ship") and not graph.is_terminal("check")
    assert [graph.get_step_depth(n) for n in ("start", "check", "manual", "ship")] == [0, 1, 2, 3]
    lonely = definition([], "start", "island")
    assert WorkflowGraph(lonely).get_step_depth("island") == -1


def test_all_paths_visit_no_node_twice_and_stop_at_the_limit() -> None:
    graph = WorkflowGraph(ORDER)
    assert graph.get_all_paths("start", "ship") == [
        ["start", "check", "manual", "ship"], ["start", "check", "auto", "ship"]]
    assert graph.get_all_paths("start", "ship", max_paths=1) == [["start", "check", "manual", "ship"]]
    loop = definition([Edge("a", "b"), Edge("b", "c"), Edge("c", "a")], "a", "b", "c", initial="a")
    assert WorkflowGraph(loop).get_all_paths("a", "c") == [["a", "b", "c"]]


def test_validate_lists_the_definitions_problems_and_its_dead_ends() -> None:
    """A sink that terminal_steps does not list is a dead end for the graph, as for
    litestar-workflows' graph; the definition (and registration) accepts it."""
    assert ORDER.validate() == []
    (dead_end,) = WorkflowGraph(ORDER).validate()
    assert (dead_end.kind, dead_end.names) == ("dead_end", ("ship",))
    assert dead_end == ("Step 'ship' has no outgoing edges but is not marked as terminal "
                        "(list it in terminal_steps if paths may end there)")
    listed = WorkflowDefinition(name="g", steps=ORDER.steps, edges=ORDER.edges,
                                initial_step="start", terminal_steps={"ship"})
    assert WorkflowGraph(listed).validate() == []
    broken = definition([Edge("start", "ghost")], "start", "island")
    kinds = sorted(p.kind for p in WorkflowGraph(broken).validate())
    assert kinds == ["dead_end", "unknown_node", "unreachable"]


def test_a_definition_with_step_class_edges_has_the_same_graph() -> None:
    class Start(Noop):
        name = "start"

    class End(Noop):
        name = "end"

    by_class = WorkflowDefinition(name="c", steps={"start": Start(), "end": End()},
                                  edges=[Edge(Start, End)], initial_step="start")
    assert by_class.validate() == []
    assert WorkflowGraph(by_class).get_next_steps("start", WorkflowContext()) == ["end"]
