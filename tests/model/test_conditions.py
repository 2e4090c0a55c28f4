"""String edge conditions: ``Edge(a, b, condition="approved")`` is an expression over the
context, evaluated (litestar-workflows takes every string as true), and an expression outside
the small grammar is refused when the edge is made, naming the edge and the offending part."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from engine.helpers import writer
from shardflow import (
    Edge,
    InvalidConditionError,
    InvalidTransitionError,
    WorkflowContext,
    WorkflowDefinition,
    WorkflowGraph,
)


def decision(yes: str = "approved", no: str = "not approved") -> WorkflowDefinition:
    return WorkflowDefinition(
        name="decision", steps={n: writer(n) for n in ("review", "publish", "reject")},
        edges=[Edge("review", "publish", yes), Edge("review", "reject", no)],
        initial_step="review", terminal_steps={"publish", "reject"})


@pytest.mark.parametrize(("data", "expected"), [({"approved": True}, ["publish"]),
                                                ({"approved": False}, ["reject"]),
                                                ({}, ["reject"])])  # missing: None, as ctx.get
def test_a_string_condition_routes_by_the_context(data: dict[str, Any], expected: list[str]) -> None:
    flow = decision()
    ctx = WorkflowContext(data)
    assert flow.get_next_steps("review", ctx) == expected
    assert WorkflowGraph.from_definition(flow).get_next_steps("review", ctx) == expected
    assert flow.validate() == []
    assert [e.condition for e in flow.edges] == ["approved", "not approved"]  # as given


ORDER = {"order": {"total": 150, "status": "paid", "items": [1, 2]}, "approved": True,
         "count": 0, "note": None}


@pytest.mark.parametrize(("expression", "expected"), [
    ("order.total > 100", True),
    ("order.total > 100 and not approved", False),
    ("ctx.get('order.total') == 150", True),
    ("context.get('order.total', 0) * 2 >= 300", True),
    ("ctx.get('missing', 7) == 7", True),
    ("order.missing is None and missing.deeper is None", True),
    ("note is not None", False),
    ("order.status in ('paid', 'shipped')", True),
    ("order.status not in ['paid']", False),
    ("2 in order.items", True),
    ("0 <= count < 1", True),
    ("(order.total - 50) / 4 == 25 and order.total // 100 == 1 and order.total % 7 == 3", True),
    ("-order.total < +count", True),
    ("count or approved", True),
    ("'pa' + 'id' == order.status", True),
])
def test_the_grammar(expression: str, expected: bool) -> None:
    assert Edge("a", "b", expression).evaluate_condition(WorkflowContext(ORDER)) is expected


@pytest.mark.parametrize(("expression", "part", "why"), [
    ("__import__('os').system('true')", "__import__('os').system('true')", "only call allowed"),
    ("approved or __import__('os')", "__import__('os')", "only call allowed is ctx.get"),
    ("open('/etc/passwd')", "open('/etc/passwd')", "only call allowed is ctx.get"),
    ("ctx.data", "ctx.data", "'ctx' may only be used as ctx.get"),
    ("ctx", "ctx", "'ctx' may only be used as ctx.get"),
    ("order.__class__", "order.__class__", "double underscores"),
    ("__builtins__", "__builtins__", "double underscores"),
    ("ctx.get('k').upper()", "ctx.get('k').upper()", "only call allowed"),
    ("ctx.get(key)", "key", "must be a string constant"),
    ("ctx.get('k', default=1)", "ctx.get('k', default=1)", "by position"),
    ("order['total'] > 1", "order['total']", "subscript"),
    ("(lambda: 1)() or x", "(lambda: 1)()", "only call allowed"),
    ("[i for i in order.items]", "[i for i in order.items]", "comprehension"),
    ("approved and 2 ** 64 ** 64", "2 ** 64 ** 64", "operator **"),
    ("a if b else c", "a if b else c", "conditional expression"),
    ("approved and", "approved and", "not an expression"),
    ("", "", "not an expression"),
    ("b'x' == y", "b'x'", "bytes constant"),
])
def test_an_expression_outside_the_grammar_is_refused_where_the_edge_is_made(
        expression: str, part: str, why: str) -> None:
    with pytest.raises(InvalidConditionError) as caught:
        Edge("check", "ship", expression)
    error = caught.value
    assert isinstance(error, InvalidTransitionError) and isinstance(error, ValueError)
    assert (error.from_step, error.to_step, error.expression, error.part) == (
        "check", "ship", expression.strip(), part)
    assert str(error).startswith("edge 'check' -> 'ship': condition ")
    assert why in str(error) and repr(part)[1:-1] in str(error)


def test_an_expression_that_fails_on_the_context_names_the_edge_and_the_expression() -> None:
    edge = Edge("check", "ship", "order.total > 100")
    with pytest.raises(InvalidTransitionError, match=r"'check' -> 'ship'.*'order.total > 100' "
                                                     r"raised TypeError") as caught:
        edge.evaluate_condition(WorkflowContext({}))  # None > 100
    assert isinstance(caught.value.__cause__, TypeError)


def test_an_edge_with_an_expression_copies_and_pickles_as_its_text() -> None:
    edge = Edge("a", "b", "order.total > 100")
    again = pickle.loads(pickle.dumps(edge))
    assert again == edge and again.condition == "order.total > 100"
    assert again.evaluate_condition(WorkflowContext(ORDER)) is True
    assert Edge("a", "b", "approved") != Edge("a", "b", "not approved")


def test_diagrams_show_the_expression_on_its_edge() -> None:
    flow = decision(yes="approved", no="order.total > 100")
    mermaid = flow.to_mermaid()
    assert "review -->|approved| publish" in mermaid
    assert 'review -->|"order.total #gt; 100"| reject' in mermaid
    assert 'label="order.total > 100"' in flow.to_dot()
