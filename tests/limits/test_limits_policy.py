"""Limits as pure policy: slot tables, rate schedules, the arbiter, and the in-process gate."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shardflow import (
    BaseMachineStep,
    ConfigError,
    FakeClock,
    LocalExecutionEngine,
    WorkflowDefinition,
    WorkflowRegistry,
    WorkflowValidationError,
)
from shardflow.batch.arbiter import Arbiter
from shardflow.limits.rates import RateSchedule, parse_rate
from shardflow.limits.slots import SlotTable


def test_acquisition_is_all_or_nothing_and_fifo() -> None:
    table = SlotTable.of({"a": 1, "b": 1})
    granted: list[str] = []
    first = table.request(("a",), lambda: granted.append("a-holder"), 0.0)
    table.request(("a", "b"), lambda: granted.append("both"), 0.0)  # waits, holding nothing
    b_only = table.request(("b",), lambda: granted.append("b-only"), 0.0)
    assert granted == ["a-holder", "b-only"]  # "both" holds no b slot while it waits for a
    table.release(b_only, 1.0)
    assert granted == ["a-holder", "b-only"]  # a is still held
    table.release(first, 2.0)
    assert granted == ["a-holder", "b-only", "both"]
    report = table.report(3.0)
    assert report["a"]["peak"] == 1 and report["a"]["waits"] == 1
    assert report["a"]["mean_wait_ms"] == 2000.0


def test_withdrawn_request_is_never_granted() -> None:
    table = SlotTable.of({"a": 1})
    granted: list[int] = []
    holder = table.request(("a",), lambda: granted.append(1), 0.0)
    waiter = table.request(("a",), lambda: granted.append(2), 0.0)
    table.release(waiter, 0.5)  # cancelled while waiting
    table.release(holder, 1.0)
    assert granted == [1]
    assert table.limits["a"].used == 0


def test_rate_schedule_books_exact_start_times() -> None:
    schedule = RateSchedule(parse_rate("sms", "10/s burst 3"))
    delays = [schedule.reserve(0.0) for _ in range(6)]
    assert delays[:3] == [0.0, 0.0, 0.0]
    assert delays[3:] == pytest.approx([0.1, 0.2, 0.3])
    assert parse_rate("x", "120/m").per_second == 2.0
    with pytest.raises(ConfigError, match=r"rate_limits\.bad"):
        parse_rate("bad", "fast")


def test_arbiter_releases_a_dead_workers_slots(run: Any) -> None:
    async def main() -> list[tuple[str, list[int]]]:
        sent: list[tuple[str, list[int]]] = []
        arbiter = Arbiter({"api": 1}, {}, lambda worker, rids: sent.append((worker, rids)))
        arbiter.on_acquire("w1", b'[[0, ["api"], null]]')
        arbiter.on_acquire("w2", b'[[0, ["api"], null]]')
        await asyncio.sleep(0)  # grants go out once per loop iteration
        arbiter.worker_gone("w1")  # w1 was killed while holding the slot
        await asyncio.sleep(0)
        return sent

    assert run(main()) == [("w1", [0]), ("w2", [0])]


class Call(BaseMachineStep):
    name = "call"
    limit = "api"
    active = 0
    peak = 0
    release: asyncio.Event | None = None
    three_running: asyncio.Event | None = None

    async def execute(self, context: Any) -> Any:
        Call.active += 1
        Call.peak = max(Call.peak, Call.active)
        if Call.active == 3 and Call.three_running is not None:
            Call.three_running.set()
        try:
            assert Call.release is not None
            await Call.release.wait()
        finally:
            Call.active -= 1


def test_engine_limit_bounds_concurrent_steps(run: Any) -> None:
    async def main() -> int:
        Call.active = Call.peak = 0
        Call.release = asyncio.Event()
        Call.three_running = asyncio.Event()
        definition = WorkflowDefinition(name="limited", steps={"call": Call()}, edges=[],
                                        initial_step="call", terminal_steps={"call"})
        registry = WorkflowRegistry()
        registry.register_definition(definition)
        engine = LocalExecutionEngine(registry, limits={"api": 3}, clock=FakeClock())
        runs = [asyncio.ensure_future(engine.start_workflow("limited")) for _ in range(10)]
        await Call.three_running.wait()
        for _ in range(20):  # give the other seven every chance to exceed the limit
            await asyncio.sleep(0)
        assert Call.active == 3
        Call.release.set()
        instances = await asyncio.gather(*runs)
        assert all(i.status == "completed" for i in instances)
        return Call.peak

    assert run(main()) == 3


def test_engine_refuses_an_unsized_limit(run: Any) -> None:
    async def main() -> None:
        definition = WorkflowDefinition(name="limited", steps={"call": Call()}, edges=[],
                                        initial_step="call", terminal_steps={"call"})
        registry = WorkflowRegistry()
        registry.register_definition(definition)
        with pytest.raises(WorkflowValidationError, match="step 'call' declares limit 'api'"):
            await LocalExecutionEngine(registry).start_workflow("limited")

    run(main())
