"""litestar-workflows' step hooks, honoured everywhere: ``can_execute`` (False skips the step,
the skip is recorded and propagates as for a false edge condition), ``on_success`` and
``on_failure``; and steps without hooks stay plain (compiled inline)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from engine.helpers import engine_for, step, within
from shardflow import (
    BaseMachineStep,
    Edge,
    WorkflowContext,
    WorkflowDefinition,
    WorkflowStatus,
)
from shardflow.engine.attempt import is_plain
from shardflow.engine.results import parse_line
from shardflow.engine.rows import JobKind
from shardflow.engine.schedule import schedule_for
from shardflow.engine.shard import ShardJob, ShardRunner

CHARGED: list[Any] = []


class Charge(BaseMachineStep):
    """Charges a card unless the order is already paid: the guard must stop it."""

    async def can_execute(self, context: WorkflowContext) -> bool:
        return not context.get("paid")

    async def execute(self, context: WorkflowContext) -> Any:
        CHARGED.append(context.get("id"))
        context.set("charged", True)


class Receipt(BaseMachineStep):
    async def execute(self, context: WorkflowContext) -> Any:
        context.set("receipt", True)


class Audit(BaseMachineStep):
    async def execute(self, context: WorkflowContext) -> Any:
        context.set("audited", True)


def _checkout() -> WorkflowDefinition:
    """charge -> receipt -> done, and audit -> done: a refused charge skips the receipt,
    and the join ``done`` still runs on the audit's edge."""
    return WorkflowDefinition(
        name="checkout",
        steps={"start": step("start", _noop), "charge": Charge(), "receipt": Receipt(),
               "audit": Audit(), "done": step("done", _noop)},
        edges=[Edge("start", "charge"), Edge("start", "audit"), Edge("charge", "receipt"),
               Edge("receipt", "done"), Edge("audit", "done")],
        initial_step="start", terminal_steps={"done"},
    )


async def _noop(context: WorkflowContext) -> None:
    return None


def test_a_step_without_hooks_stays_plain_and_one_with_hooks_does_not() -> None:
    class Hooked(BaseMachineStep):
        async def on_success(self, context: WorkflowContext, result: Any) -> None:
            return None

    assert not Receipt.hooked and not Receipt.guarded and is_plain(Receipt(), gated=True)
    assert Charge.guarded and Charge.hooked and not is_plain(Charge(), gated=False)
    assert Hooked.hooked and not Hooked.guarded


@pytest.mark.parametrize("paid", [True, False])
def test_can_execute_false_skips_the_step_and_the_skip_propagates(run: Any, paid: bool) -> None:
    CHARGED.clear()

    async def main() -> Any:
        return await within(engine_for(_checkout()).start_workflow("checkout",
                                                                   {"id": 7, "paid": paid}))

    instance = run(main())
    assert instance.status == WorkflowStatus.COMPLETED
    statuses = {r.node: r.status for r in instance.history}
    if paid:
        assert CHARGED == []  # the card was not charged
        assert statuses["charge"] == statuses["receipt"] == "skipped"
        assert instance.context.data == {"id": 7, "paid": True, "audited": True}
        skipped = [e.step_name for e in instance.context.step_history if e.status == "skipped"]
        assert skipped == ["charge", "receipt"]
    else:
        assert CHARGED == [7]
        assert statuses["charge"] == statuses["receipt"] == "completed"
        assert instance.context.get("receipt") is True
    assert statuses["done"] == "completed"  # the join runs either way


def test_can_execute_is_honoured_in_a_batch_worker(run: Any) -> None:
    CHARGED.clear()
    jobs = [ShardJob(i, i, 1, JobKind.NEW, orjson.dumps({"id": i, "paid": i % 2 == 0}))
            for i in range(4)]
    out = run(within(ShardRunner(_checkout()).run_batch(jobs)))
    records = {parse_line(line)["id"]: parse_line(line) for line in out.lines}
    assert sorted(CHARGED) == [1, 3]
    for i, record in records.items():
        assert record["status"] == "completed"
        assert ("receipt" in record["context"]) is (i % 2 == 1)


class Tracked(BaseMachineStep):
    """Records its hooks; fails while ``context['fail']`` is set."""

    retries = 1

    def __init__(self, calls: list[Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.calls = calls

    async def execute(self, context: WorkflowContext) -> Any:
        self.calls.append(("execute", self.name))
        if context.get("fail"):
            raise ValueError("declined")
        context.set(self.name, "done")
        return {"ok": self.name}

    async def on_success(self, context: WorkflowContext, result: Any) -> None:
        self.calls.append(("on_success", self.name, result, context.get(self.name)))

    async def on_failure(self, context: WorkflowContext, error: BaseException) -> None:
        self.calls.append(("on_failure", self.name, type(error).__name__))


@pytest.mark.parametrize("fail", [False, True])
def test_on_success_and_on_failure_run_in_compiled_and_interpreted_plans(run: Any,
                                                                         fail: bool) -> None:
    async def main() -> dict[str, Any]:
        outcomes = {}
        for form in ("compiled", "interpreted"):
            calls: list[Any] = []
            condition = None if form == "compiled" else (lambda ctx: True)
            definition = WorkflowDefinition(
                name=form, steps={"a": Tracked(calls, name="a"), "b": Tracked(calls, name="b")},
                edges=[Edge("a", "b", condition=condition)], initial_step="a",
                terminal_steps={"b"})
            compiled = schedule_for(definition.plan, (False, False)) is not None
            instance = await within(engine_for(definition).start_workflow(form, {"fail": fail}))
            outcomes[form] = (compiled, instance.status, calls)
        return outcomes

    outcomes = run(main())
    assert outcomes["compiled"][0] is True and outcomes["interpreted"][0] is False
    for _, status, calls in outcomes.values():
        if fail:  # two attempts, then on_failure once; b never runs
            assert status == WorkflowStatus.FAILED
            assert calls == [("execute", "a"), ("execute", "a"), ("on_failure", "a", "ValueError")]
        else:
            assert status == WorkflowStatus.COMPLETED
            assert calls == [("execute", "a"), ("on_success", "a", {"ok": "a"}, "done"),
                             ("execute", "b"), ("on_success", "b", {"ok": "b"}, "done")]


def test_a_failing_on_success_fails_the_step_and_on_failure_is_told(run: Any) -> None:
    calls: list[str] = []

    class Picky(BaseMachineStep):
        async def execute(self, context: WorkflowContext) -> Any:
            calls.append("execute")

        async def on_success(self, context: WorkflowContext, result: Any) -> None:
            raise RuntimeError("cannot notify")

        async def on_failure(self, context: WorkflowContext, error: BaseException) -> None:
            calls.append(f"on_failure {error}")

    definition = WorkflowDefinition(name="picky", steps={"p": Picky()}, edges=[],
                                    initial_step="p", terminal_steps={"p"})
    instance = run(within(engine_for(definition).start_workflow("picky")))
    assert instance.status == WorkflowStatus.FAILED
    assert (instance.error.step, instance.error.type) == ("p", "RuntimeError")
    assert "cannot notify" in instance.error  # the error reads as its message
    assert calls == ["execute", "on_failure cannot notify"]
