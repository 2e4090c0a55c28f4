"""Step policies: enforced timeouts, retries with delays and jitter, ``retry_on``, and
``max_concurrent``. Time is a :class:`shardflow.FakeClock`: nothing here waits for real."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from engine.helpers import Tracker, engine_for, history_of, settle, single, step, within
from shardflow import FakeClock, ParallelGroup, StepTimeoutError, WorkflowContext, WorkflowStatus
from shardflow.limits.retry import retry_delay
from shardflow.limits.timeouts import enforced_after


def never(context: WorkflowContext) -> Any:
    return asyncio.Event().wait()


# -- timeouts ---------------------------------------------------------------------------------------
def test_timeout_seconds_is_enforced(run: Any) -> None:
    async def main() -> tuple[Any, bool]:
        clock = FakeClock()
        engine = engine_for(single(step("stuck", never, timeout_seconds=30)), clock=clock)
        started = asyncio.create_task(engine.start_workflow("single"))
        await within(clock.wait_for_timers(1))
        clock.advance(29.5)
        await settle()
        still_running = not started.done()
        clock.advance(1.5)  # 31 s in all
        return await within(started), still_running

    instance, still_running_at_29_5 = run(main())
    assert still_running_at_29_5
    assert instance.status == WorkflowStatus.FAILED
    assert (instance.error.type, instance.error.step) == ("StepTimeoutError", "node")
    assert "30 s" in instance.error.message
    assert [r.status for r in history_of(instance, "node")] == ["failed"]


@pytest.mark.parametrize("timeout", [0.01, 0.05, 1, 30, 600])
def test_the_engine_enforces_a_timeout_shortly_after_it(timeout: float) -> None:
    """A little after, so a step enforcing the same deadline itself handles it first (see the
    guide's TimedFetch), and never more than a second after."""
    assert timeout + 0.05 <= enforced_after(timeout) <= timeout + 1


def test_a_timed_out_step_is_retried(run: Any) -> None:
    async def main() -> Any:
        clock = FakeClock()
        attempts: list[int] = []

        async def body(context: WorkflowContext) -> Any:
            attempts.append(1)
            if len(attempts) == 1:
                await asyncio.Event().wait()
            return len(attempts)

        engine = engine_for(single(step("slow_once", body, timeout_seconds=5, retries=1,
                                         store_result=True)), clock=clock)
        started = asyncio.create_task(engine.start_workflow("single"))
        await within(clock.wait_for_timers(1))
        clock.advance(10)
        return await within(started)

    instance = run(main())
    assert instance.status == WorkflowStatus.COMPLETED
    assert instance.context.get("node") == 2
    assert [(r.status, r.attempts, r.error and r.error.type) for r in instance.history] == [
        ("failed", 1, "StepTimeoutError"), ("completed", 2, None)]


def test_execute_step_enforces_the_timeout_too(run: Any) -> None:
    async def main() -> None:
        clock = FakeClock()
        engine = engine_for(clock=clock)
        running = asyncio.create_task(engine.execute_step(step("stuck", never, timeout_seconds=2),
                                                          WorkflowContext()))
        await within(clock.wait_for_timers(1))
        clock.advance(3)
        with pytest.raises(StepTimeoutError) as caught:
            await within(running)
        assert (caught.value.step, caught.value.timeout) == ("stuck", 2)

    run(main())


# -- retries ----------------------------------------------------------------------------------------
def flaky(failures: int, kind: type[Exception] = ConnectionError) -> tuple[Any, list[int]]:
    attempts: list[int] = []

    async def body(context: WorkflowContext) -> Any:
        attempts.append(len(attempts) + 1)
        context.set(f"attempt_{len(attempts)}", True)
        context.set("last_attempt", len(attempts))
        if len(attempts) <= failures:
            raise kind(f"attempt {len(attempts)} failed")
        return "done"

    return body, attempts


def test_retries_until_success_without_leaking_failed_attempts_writes(run: Any) -> None:
    body, attempts = flaky(2)

    async def main() -> Any:
        engine = engine_for(single(step("flaky", body, retries=2, store_result=True)))
        return await within(engine.start_workflow("single", {"input": 1}))

    instance = run(main())
    assert instance.status == WorkflowStatus.COMPLETED
    assert attempts == [1, 2, 3]
    assert instance.context.data == {"input": 1, "attempt_3": True, "last_attempt": 3, "node": "done"}
    assert [(r.status, r.attempts, r.error and r.error.type) for r in instance.history] == [
        ("failed", 1, "ConnectionError"), ("failed", 2, "ConnectionError"), ("completed", 3, None)]


def test_the_last_failure_fails_the_instance_after_every_retry(run: Any) -> None:
    body, attempts = flaky(5)

    async def main() -> Any:
        engine = engine_for(single(step("flaky", body, retries=2, store_result=True)))
        return await within(engine.start_workflow("single"))

    instance = run(main())
    assert instance.status == WorkflowStatus.FAILED
    assert attempts == [1, 2, 3]
    assert (instance.error.type, instance.error.message) == ("ConnectionError", "attempt 3 failed")
    assert "attempt_1" not in instance.context


@pytest.mark.parametrize(("kind", "attempts_made", "status"), [
    (ConnectionError, 2, WorkflowStatus.COMPLETED),
    (ValueError, 1, WorkflowStatus.FAILED),
])
def test_retry_on_restricts_which_errors_are_retried(
    run: Any, kind: type[Exception], attempts_made: int, status: WorkflowStatus
) -> None:
    body, attempts = flaky(1, kind)

    async def main() -> Any:
        flaky_step = step("flaky", body, retries=3, retry_on=(ConnectionError, TimeoutError))
        return await within(engine_for(single(flaky_step)).start_workflow("single"))

    instance = run(main())
    assert instance.status == status
    assert len(attempts) == attempts_made


def test_the_engine_sleeps_the_retry_delays(run: Any) -> None:
    body, attempts = flaky(2)

    async def main() -> Any:
        clock = FakeClock()
        flaky_step = step("flaky", body, retries=2, retry_delay_seconds=[10, 60])
        engine = engine_for(single(flaky_step), clock=clock)
        started = asyncio.create_task(engine.start_workflow("single"))
        for delay in (10, 60):
            await within(clock.wait_for_timers(1))
            made = len(attempts)
            clock.advance(delay - 0.5)
            await settle()
            assert len(attempts) == made, "retried before its delay"
            clock.advance(0.5)
        instance = await within(started)
        assert clock.now() == 70
        return instance

    instance = run(main())
    assert instance.status == WorkflowStatus.COMPLETED
    assert attempts == [1, 2, 3]


def test_execute_step_retries_and_returns_the_result(run: Any) -> None:
    body, attempts = flaky(1)

    async def main() -> tuple[Any, WorkflowContext]:
        context = WorkflowContext({"x": 1})
        result = await within(engine_for().execute_step(step("flaky", body, retries=1), context))
        return result, context

    result, context = run(main())
    assert result == "done"
    assert attempts == [1, 2]
    assert context.data == {"x": 1, "attempt_2": True, "last_attempt": 2}  # not the result
    [execution] = context.step_history
    assert (execution.step_name, execution.status, execution.result) == ("flaky", "succeeded",
                                                                          "done")


def test_retry_delay_number_and_list() -> None:
    assert retry_delay(5, None, 1) == 5
    assert retry_delay(5, None, 3) == 5
    assert [retry_delay([1, 10, 100], None, n) for n in (1, 2, 3, 4, 5)] == [1, 10, 100, 100, 100]
    assert retry_delay([], None, 1) == 0
    assert retry_delay(0, 0.5, 1) == 0


def test_retry_delay_jitter_stays_within_its_factor_and_is_seedable() -> None:
    delays = [retry_delay(10, 0.2, 1, random.Random(seed)) for seed in range(200)]
    assert all(8.0 <= d <= 12.0 for d in delays)
    assert min(delays) < 9.0 and max(delays) > 11.0  # it does spread
    assert delays == [retry_delay(10, 0.2, 1, random.Random(seed)) for seed in range(200)]
    assert retry_delay([1, 50], 0.1, 2, random.Random(1)) == pytest.approx(
        50 * (1 + random.Random(1).uniform(-0.1, 0.1)))


def test_the_engine_applies_jitter(run: Any) -> None:
    """With the global random generator seeded, the retry happens exactly at the jittered delay."""
    body, attempts = flaky(1)
    expected = 100 * (1 + random.Random(7).uniform(-0.5, 0.5))
    assert abs(expected - 100) > 1

    async def main() -> None:
        clock = FakeClock()
        flaky_step = step("flaky", body, retries=1, retry_delay_seconds=100, retry_jitter_factor=0.5)
        engine = engine_for(single(flaky_step), clock=clock)
        state = random.getstate()
        random.seed(7)
        try:
            started = asyncio.create_task(engine.start_workflow("single"))
            await within(clock.wait_for_timers(1))
        finally:
            random.setstate(state)
        clock.advance(expected - 0.01)
        await settle()
        assert attempts == [1]
        clock.advance(0.02)
        assert (await within(started)).status == WorkflowStatus.COMPLETED
        assert attempts == [1, 2]

    run(main())


# -- max_concurrent ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("limit", "branches"), [(2, 5), (1, 3), (None, 4), (10, 4)])
def test_max_concurrent_bounds_a_groups_branches(run: Any, limit: int | None, branches: int) -> None:
    expected = min(limit or branches, branches)

    async def main() -> Tracker:
        tracker = Tracker()

        def hold(name: str) -> Any:
            async def body(context: WorkflowContext) -> None:
                await tracker.hold(name)
                context.set(name, True)
            return body

        group = ParallelGroup(*(step(f"b{i}", hold(f"b{i}")) for i in range(branches)), max_concurrent=limit)
        engine = engine_for(single(group, name="bounded"))
        started = asyncio.create_task(engine.start_workflow("bounded"))
        await within(tracker.wait_inside(expected))
        await settle()  # one more branch, were it admitted, would be inside by now
        assert tracker.current == expected
        tracker.release()
        instance = await within(started)
        assert all(instance.context.get(f"b{i}") for i in range(branches))
        return tracker

    tracker = run(main())
    assert tracker.peak == expected
    assert len(tracker.entered) == branches
