"""Every code block of the seed guide (docs/seed-guide-parallel-execution.txt), run for real, asserting what
the guide says happens. The blocks live in :mod:`engine.guide`, ported with only the import
changed; what the guide leaves undefined comes from :mod:`engine.guide.fakes`."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from engine.guide import approvals, basic, chord, complete, fakes, group, partial, practices, race, timeout
from engine.guide.fakes import CompleteStep, ProcessStep, journal
from engine.helpers import LIMIT, Rendezvous, Tracker, engine_for, history_of, settle, single, step, within
from shardflow import ParallelGroup, WorkflowContext, WorkflowStatus


@pytest.fixture(autouse=True)
def fresh_fakes() -> None:
    fakes.reset()


def meet(*services: fakes.FakeService) -> None:
    """Make the services' callers meet: each call waits until all have started."""
    rendezvous = Rendezvous(len(services))
    for service in services:
        service.meet = rendezvous


NOTIFIERS = (fakes.email_service, fakes.slack_service, fakes.sms_service)
STARTED = {"email started", "slack started", "sms started"}
DONE = {"email done", "slack done", "sms done"}


def assert_fork_join(instance: Any) -> None:
    """process, then the three sends concurrently (all started before any finished), then
    complete exactly once, seeing all three."""
    assert instance.status == WorkflowStatus.COMPLETED
    assert ProcessStep.runs == 1
    assert journal[0] == "process"
    assert set(journal[1:4]) == STARTED
    assert set(journal[4:7]) == DONE
    assert journal[7:] == ["complete"]
    assert CompleteStep.seen == [{"email_sent": True, "slack_sent": True, "sms_sent": True}]
    for key in ("processed", "email_sent", "slack_sent", "sms_sent", "completed"):
        assert instance.context.get(key) is True


# -- Basic Parallel Pattern ---------------------------------------------------------------------
def test_fork_join_by_edges_runs_complete_once_after_three_concurrent_branches(run: Any) -> None:
    async def main() -> Any:
        meet(*NOTIFIERS)
        engine = engine_for(basic.notification_workflow)
        return await within(engine.start_workflow("parallel_notify"))

    instance = run(main())
    assert_fork_join(instance)
    assert [r.status for r in history_of(instance, "complete")] == ["completed"]
    assert all(s.calls == 1 for s in NOTIFIERS)


# -- Using ParallelGroup ------------------------------------------------------------------------
def test_parallel_group_version_behaves_like_the_edges(run: Any) -> None:
    async def main() -> Any:
        meet(*NOTIFIERS)
        engine = engine_for(group.workflow)
        return await within(engine.start_workflow("parallel_notify"))

    instance = run(main())
    assert_fork_join(instance)
    assert len(instance.history) == 5
    assert (instance.history[0].node, instance.history[-1].node) == ("process", "complete")
    assert {r.node for r in instance.history[1:4]} == {
        "notify/send_email", "notify/send_slack", "notify/send_sms"}


# -- Chord Pattern ------------------------------------------------------------------------------
def test_chord_callback_runs_once_and_sees_all_three_results(run: Any) -> None:
    async def main() -> Any:
        meet(fakes.api1, fakes.api2, fakes.api3)
        engine = engine_for(single(chord.data_fetch_group, name="chord"))
        return await within(engine.start_workflow("chord"))

    instance = run(main())
    assert instance.status == WorkflowStatus.COMPLETED
    assert instance.context.get("combined_data") == {
        "api1": {"rows": [1]}, "api2": {"rows": [2, 2]}, "api3": {"rows": [3, 3, 3]}}
    callback_runs = history_of(instance, "node/aggregate")
    assert [r.status for r in callback_runs] == ["completed"]
    branch_ends = [r.ended_at for r in instance.history if r.node.startswith("node/fetch_api")]
    assert len(branch_ends) == 3
    assert callback_runs[0].started_at >= max(branch_ends)


# -- Parallel Human Tasks -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("legal", "finance", "security", "expected"),
    [(True, True, True, True), (True, False, True, False), (True, True, False, False)],
)
def test_parallel_approvals_wait_for_all_three_tasks(
    run: Any, legal: bool, finance: bool, security: bool, expected: bool
) -> None:
    async def main() -> Any:
        engine = engine_for(single(approvals.parallel_approvals, name="approvals"))
        instance = await within(engine.start_workflow("approvals"))
        assert instance.status == WorkflowStatus.WAITING
        tasks = {t.step: t for t in engine.pending_tasks(instance.id)}
        assert set(tasks) == {"legal_approval", "finance_approval", "security_approval"}
        assert tasks["legal_approval"].title == "Legal Review Required"
        assert tasks["security_approval"].form_schema == approvals.SecurityApproval.form_schema
        assert all(t.instance_id == instance.id for t in tasks.values())

        await engine.complete_human_task(tasks["legal_approval"].id, {"approved": legal}, "lee")
        assert instance.status == WorkflowStatus.WAITING
        await engine.complete_human_task(tasks["finance_approval"].id,
                                         {"approved": finance, "budget_code": "B-7"})
        assert instance.status == WorkflowStatus.WAITING
        assert [t.step for t in engine.pending_tasks(instance.id)] == ["security_approval"]
        done = await within(engine.complete_human_task(
            tasks["security_approval"].id, {"approved": security, "risk_level": "low"}))
        assert done is instance
        assert engine.pending_tasks(instance.id) == []
        return instance

    instance = run(main())
    assert instance.status == WorkflowStatus.COMPLETED
    assert instance.context.get("all_approved") is expected
    assert instance.context.get("legal_approval") == {"approved": legal}
    assert instance.context.get("finance_approval.budget_code") == "B-7"
    assert len(history_of(instance, "node/check_approvals")) == 1


# -- Handling Partial Failures ------------------------------------------------------------------
class FetchApi1(partial.ResilientFetch):
    name = "fetch_api1"


class FetchApi2(partial.ResilientFetch):
    name = "fetch_api2"


class FetchApi3(partial.ResilientFetch):
    name = "fetch_api3"


def partial_workflow() -> Any:
    return single(ParallelGroup(FetchApi1(), FetchApi2(), FetchApi3(),
                                callback=partial.HandlePartialResults()), name="partial")


def test_resilient_fetch_records_a_failure_and_the_callback_sorts_results(run: Any) -> None:
    async def main() -> Any:
        fakes.external_api.reset(failing={2})
        engine = engine_for(partial_workflow())
        return await within(engine.start_workflow("partial"))

    instance = run(main())
    ctx = instance.context
    assert instance.status == WorkflowStatus.COMPLETED
    successful, failed = ctx.get("successful_fetches"), ctx.get("failed_fetches")
    assert len(successful) == 2
    assert len(failed) == 1
    assert sorted(successful + failed) == ["api1", "api2", "api3"]
    assert ctx.get(f"fetch_{failed[0]}_success") is False
    assert ctx.get(f"fetch_{failed[0]}_error") == "call 2 refused"
    for source in successful:
        assert ctx.get(f"fetch_{source}_data") in ({"call": 1}, {"call": 3})


def test_handle_partial_results_with_every_fetch_ok(run: Any) -> None:
    async def main() -> Any:
        engine = engine_for(partial_workflow())
        return await within(engine.start_workflow("partial"))

    instance = run(main())
    assert instance.status == WorkflowStatus.COMPLETED
    assert instance.context.get("successful_fetches") == ["api1", "api2", "api3"]
    assert instance.context.get("failed_fetches") == []


def test_handle_partial_results_fails_the_instance_when_every_fetch_failed(run: Any) -> None:
    async def main() -> Any:
        fakes.external_api.reset(failing={1, 2, 3})
        engine = engine_for(partial_workflow())
        return await within(engine.start_workflow("partial"))

    instance = run(main())
    assert instance.status == WorkflowStatus.FAILED
    assert instance.error is not None
    assert instance.error.step == "node/handle_results"
    assert instance.error.type == "ValueError"
    assert instance.error.message == "All data fetches failed"
    assert "All data fetches failed" in instance.error.traceback


# -- Timeout Handling ---------------------------------------------------------------------------
class QuickTimedFetch(timeout.TimedFetch):
    """The guide's step with a short timeout and a fetch that never answers."""

    timeout_seconds = 0.05

    async def fetch_data(self) -> Any:
        await asyncio.Event().wait()


class PromptTimedFetch(timeout.TimedFetch):
    async def fetch_data(self) -> Any:
        return {"rows": 3}


def test_timed_fetch_stops_at_its_timeout_and_records_it(run: Any) -> None:
    async def main() -> tuple[Any, float]:
        engine = engine_for(single(QuickTimedFetch(), name="timed"))
        loop = asyncio.get_running_loop()
        started = loop.time()
        instance = await within(engine.start_workflow("timed"))
        return instance, loop.time() - started

    instance, elapsed = run(main())
    assert instance.status == WorkflowStatus.COMPLETED, instance.error
    assert instance.context.get("timed_out") is True
    assert "data" in instance.context
    assert instance.context.get("data") is None
    assert QuickTimedFetch.timeout_seconds - 0.01 <= elapsed < LIMIT  # uvloop's timers have 1 ms steps


def test_timed_fetch_that_answers_in_time_keeps_the_data(run: Any) -> None:
    async def main() -> Any:
        engine = engine_for(single(PromptTimedFetch(), name="timed"))
        return await within(engine.start_workflow("timed"))

    instance = run(main())
    assert instance.status == WorkflowStatus.COMPLETED
    assert instance.context.get("data") == {"rows": 3}
    assert "timed_out" not in instance.context


def test_guide_timed_fetch_as_written(run: Any) -> None:
    """The guide's ``fetch_data`` (a bare ``...``) returns at once: data is None, no timeout."""

    async def main() -> Any:
        engine = engine_for(single(timeout.TimedFetch(), name="timed"))
        return await within(engine.start_workflow("timed"))

    instance = run(main())
    assert instance.status == WorkflowStatus.COMPLETED
    assert instance.context.data == {"data": None}


# -- Race Pattern -------------------------------------------------------------------------------
def test_race_returns_the_fast_source_and_cancels_the_slow_one(run: Any) -> None:
    async def main() -> tuple[Any, bool, bool]:
        engine = engine_for(single(race.race_group, name="race"))
        instance = await within(engine.start_workflow("race"))
        # Observed the moment start_workflow returns: the loser's finally has already run.
        return instance, fakes.race_apis.reliable_cancelled, fakes.race_apis.reliable_finally_ran

    instance, cancelled, finally_ran = run(main())
    assert instance.status == WorkflowStatus.COMPLETED
    assert cancelled and finally_ran
    assert instance.context.get("source") == "fast"
    assert instance.context.get("data") == {"value": "fast"}
    assert [r.status for r in history_of(instance, "node/fast_source")] == ["completed"]
    assert [r.status for r in history_of(instance, "node/reliable_source")] == ["canceled"]


# -- Complete Example ---------------------------------------------------------------------------
def test_complete_example_sends_three_notifications(run: Any, capsys: pytest.CaptureFixture[str]) -> None:
    run(complete.main())
    assert capsys.readouterr().out == "Notifications sent: ['email', 'slack', 'webhook']\nCount: 3\n"


def test_complete_example_instance(run: Any) -> None:
    async def main() -> Any:
        engine = engine_for(complete.workflow)
        return await within(engine.start_workflow("order_with_notifications",
                                                  initial_data={"order_id": "ORD-123"}))

    instance = run(main())
    ctx = instance.context
    assert instance.status == WorkflowStatus.COMPLETED
    assert ctx.get("notifications_sent") == ["email", "slack", "webhook"]
    assert ctx.get("notification_count") == 3
    assert ctx.get("order_id") == "ORD-123"
    assert ctx.get("order_status") == "completed"
    assert all(isinstance(ctx.get(f"{c}_timestamp"), str) for c in ("email", "slack", "webhook"))
    assert complete.workflow.description == "Process order and send parallel notifications"


# -- Best Practices -----------------------------------------------------------------------------
def test_independent_fetches_run_concurrently(run: Any) -> None:
    async def main() -> Any:
        meet(fakes.api1, fakes.api2, fakes.api3)
        engine = engine_for(single(practices.good_parallel, name="good"))
        return await within(engine.start_workflow("good"))

    instance = run(main())
    assert instance.status == WorkflowStatus.COMPLETED
    assert [instance.context.get(f"api{i}_data") for i in (1, 2, 3)] == [
        {"rows": [1]}, {"rows": [2, 2]}, {"rows": [3, 3, 3]}]


def test_dependent_steps_in_a_group_do_not_see_each_other(run: Any) -> None:
    """Why the guide calls it bad: a branch works on its own snapshot, so ProcessFetchedData
    never sees what FetchInitialData wrote."""

    async def main() -> Any:
        engine = engine_for(single(practices.bad_parallel, name="bad"))
        return await within(engine.start_workflow("bad"))

    instance = run(main())
    assert instance.status == WorkflowStatus.COMPLETED
    assert instance.context.get("initial_data") == [1, 2, 3]
    assert "saw_initial_data" in instance.context
    assert instance.context.get("saw_initial_data") is None


class Step1(partial.ResilientFetch):
    name = "step1"


class Step2(partial.ResilientFetch):
    name = "step2"


class Step3(partial.ResilientFetch):
    name = "step3"


@pytest.mark.parametrize(("failing", "partial_success"), [({2}, True), ({1, 2, 3}, False), (set(), True)])
def test_robust_callback_reports_results_and_errors(
    run: Any, failing: set[int], partial_success: bool
) -> None:
    async def main() -> Any:
        fakes.external_api.reset(failing=failing)
        workflow = single(ParallelGroup(Step1(), Step2(), Step3(), callback=practices.RobustCallback()),
                          name="robust")
        return await within(engine_for(workflow).start_workflow("robust"))

    instance = run(main())
    assert instance.status == WorkflowStatus.COMPLETED
    results, errors = instance.context.get("results"), instance.context.get("errors")
    assert len(results) == 3 - len(failing)
    assert sorted([*results, *errors]) == ["step1", "step2", "step3"]
    assert sorted(errors.values()) == sorted(f"call {n} refused" for n in failing)
    assert instance.context.get("partial_success") is partial_success


def test_throttled_group_never_runs_more_than_max_concurrent(run: Any) -> None:
    async def main() -> tuple[Tracker, WorkflowContext]:
        tracker = Tracker()

        def body(name: str) -> Any:
            async def execute(context: WorkflowContext) -> None:
                await tracker.hold(name)
                context.set(f"{name}_done", True)
            return execute

        steps = [step(f"s{i}", body(f"s{i}")) for i in range(5)]
        throttled = practices.ThrottledGroup(*steps, max_concurrent=2)
        context = WorkflowContext({"batch": 1})
        running = asyncio.create_task(throttled.execute(context, engine_for()))
        await within(tracker.wait_inside(2))
        await settle()  # a third step, were it admitted, would be inside by now
        assert (tracker.current, len(tracker.entered)) == (2, 2)
        tracker.release()
        await within(running)
        return tracker, context

    tracker, context = run(main())
    assert tracker.peak == 2
    assert sorted(tracker.entered) == [f"s{i}" for i in range(5)]
    assert all(context.get(f"s{i}_done") for i in range(5))
