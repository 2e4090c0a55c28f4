"""In-process engine throughput against a hand-written asyncio baseline (issues 2 and 11).

Run: ``.venv/bin/python -m pytest benchmarks/bench_engine.py``

What is measured, each on one uvloop event loop in this process, with the notify fork/join
(``process`` -> ``send_email`` | ``send_slack`` | ``send_sms`` -> ``complete``, no-op fake
services, so the figures measure the engine and not sleeps):

* ``engine``: ``LocalExecutionEngine.start_workflow`` per instance (the public API: instance
  records and ids, cancellation bookkeeping, a bounded window of finished instances);
* ``runner``: ``InstanceRunner.run`` per instance (the lean path the batch workers use);
* ``baseline``: the same five steps as plain async functions calling the same fake services,
  ``asyncio.gather`` for the three-way fork and one dict for the context: no engine at all.

Every round runs ``INSTANCES`` instances, ``in_flight`` at a time (each batch is one
``asyncio.gather`` of that many instance tasks). Each subject runs with the interpreter's
default garbage collector (``gc=default``) and tuned as the batch workers tune it
(``gc=tuned``, :func:`shardflow.engine.tuning.tune_gc`). ``extra_info["instances_per_second"]``
is ``INSTANCES`` divided by the median round time.

``test_engine_reaches_target_ratio`` asserts the target of issue 11: the engine (and the runner)
reach at least ``TARGET_RATIO`` of the baseline's throughput, like with like (same in-flight
count and GC mode), measured with the subjects taking turns round by round (see its docstring).
Both tables are printed at the end of the run.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import uvloop

from shardflow import LocalExecutionEngine, WorkflowRegistry, WorkflowStatus
from shardflow.engine.runner import InstanceRunner
from shardflow.engine.tuning import restore_gc, tune_gc
from shardflow.examples import notify

INSTANCES = 10_000
"""Instances per timed round."""
IN_FLIGHT = (1_000, 5_000)
GC_MODES = ("default", "tuned")
ROUNDS = 5
RATIO_ROUNDS = 9
"""Turns per ratio test: on this machine one turn's engine/baseline ratio ranges from ~0.5 to
~0.8 (other tenants); three runs of the same code gave medians of 0.58-0.68 with 5 turns,
0.61-0.67 with 9 (docs/DECISIONS.md, "Fourth pass")."""
TARGET_RATIO = 0.60
"""Issue 11 (it was 0.40 for issue 2)."""
CHANNELS = ["email", "slack", "sms"]

RunOne = Callable[[int], Awaitable[Any]]
Rates = dict[tuple[str, int, str], float]
Ratios = dict[tuple[int, str], tuple[dict[str, float], dict[str, float]]]


# -- the hand-written baseline -------------------------------------------------------------------
async def _process(ctx: dict[str, Any]) -> None:
    ctx["processed"] = True


async def _send_email(ctx: dict[str, Any]) -> None:
    await notify.email_service.send(ctx.get("id"))
    ctx["email_sent"] = True


async def _send_slack(ctx: dict[str, Any]) -> None:
    await notify.slack_service.send(ctx.get("id"))
    ctx["slack_sent"] = True


async def _send_sms(ctx: dict[str, Any]) -> None:
    await notify.sms_service.send(ctx.get("id"))
    ctx["sms_sent"] = True


async def _complete(ctx: dict[str, Any]) -> None:
    ctx["channels"] = [c for c in ("email", "slack", "sms") if ctx.get(f"{c}_sent")]


async def baseline_instance(i: int) -> dict[str, Any]:
    """The notify fork/join written by hand: what an engine is measured against."""
    ctx: dict[str, Any] = {"id": i}
    await _process(ctx)
    await asyncio.gather(_send_email(ctx), _send_slack(ctx), _send_sms(ctx))
    await _complete(ctx)
    return ctx


# -- the subjects ----------------------------------------------------------------------------------
def _engine() -> RunOne:
    registry = WorkflowRegistry()
    registry.register_definition(notify.workflow)
    engine = LocalExecutionEngine(registry)
    name = notify.workflow.name

    def run_one(i: int) -> Awaitable[Any]:
        return engine.start_workflow(name, {"id": i})

    return run_one


def _runner() -> RunOne:
    runner = InstanceRunner(notify.workflow)

    def run_one(i: int) -> Awaitable[Any]:
        return runner.run(str(i), {"id": i})

    return run_one


def _baseline() -> RunOne:
    return baseline_instance


SUBJECTS: dict[str, Callable[[], RunOne]] = {
    "engine": _engine, "runner": _runner, "baseline": _baseline,
}


def _check(subject: str, result: Any) -> None:
    """One instance's result, checked outside the timed rounds: the work really happened."""
    if subject == "baseline":
        context, status = result, WorkflowStatus.COMPLETED
    else:
        status = result.status
        context = result.context if subject == "runner" else result.context.data
    assert status == WorkflowStatus.COMPLETED, result
    assert context["channels"] == CHANNELS, context


async def _drive(run_one: RunOne, total: int, in_flight: int) -> Any:
    """Run ``total`` instances, ``in_flight`` at a time; return the last instance's result.

    Results are dropped as soon as a batch ends (as a worker drops them once written), so no
    subject pays the garbage collector for a batch of results held during the next batch."""
    last: Any = None
    for start in range(0, total, in_flight):
        last = (await asyncio.gather(*[run_one(i) for i in range(start, min(start + in_flight,
                                                                              total))]))[-1]
    return last


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = uvloop.new_event_loop()
    try:
        yield loop
    finally:
        loop.close()


@pytest.fixture(params=GC_MODES)
def gc_mode(request: pytest.FixtureRequest) -> Iterator[str]:
    mode = str(request.param)
    settings = tune_gc() if mode == "tuned" else None
    try:
        yield mode
    finally:
        if settings is not None:
            restore_gc(settings)
        gc.collect()


# -- the benchmarks --------------------------------------------------------------------------------
@pytest.mark.parametrize("in_flight", IN_FLIGHT)
@pytest.mark.parametrize("subject", list(SUBJECTS))
def test_notify_throughput(benchmark: Any, loop: asyncio.AbstractEventLoop, gc_mode: str,
                           subject: str, in_flight: int, rates: Rates) -> None:
    run_one = SUBJECTS[subject]()
    benchmark.group = f"notify fork/join, {in_flight} in flight, gc={gc_mode}"
    benchmark.extra_info.update(instances=INSTANCES, in_flight=in_flight, gc=gc_mode,
                                subject=subject)
    last = benchmark.pedantic(
        lambda: loop.run_until_complete(_drive(run_one, INSTANCES, in_flight)),
        rounds=ROUNDS, iterations=1, warmup_rounds=1,
    )
    _check(subject, last)
    if benchmark.stats is not None:  # None under --benchmark-disable
        rate = INSTANCES / benchmark.stats.stats.median
        benchmark.extra_info["instances_per_second"] = round(rate)
        rates[(subject, in_flight, gc_mode)] = rate


@pytest.mark.parametrize("in_flight", IN_FLIGHT)
def test_engine_reaches_target_ratio(loop: asyncio.AbstractEventLoop, gc_mode: str,
                                     in_flight: int, ratios: Ratios) -> None:
    """Issue 11's target: the engine (and the runner) reach >= 60 % of the baseline.

    Measured here, not taken from the tables above: this machine's speed drifts by tens of per
    cent within minutes, so the subjects take turns, round by round (the order rotating), and
    the ratio is the median of the per-round ratios. Each round gets a fresh subject, so no
    subject's retained state (the engine's window of finished instances) sits in the heap the
    garbage collector walks during another subject's round."""
    order = ["baseline", "engine", "runner"]
    per_round: dict[str, list[float]] = {s: [] for s in order}
    for subject in order:  # warm-up
        _check(subject, loop.run_until_complete(_drive(SUBJECTS[subject](), in_flight, in_flight)))
    for turn in range(RATIO_ROUNDS):
        for subject in order[turn % 3:] + order[:turn % 3]:
            run_one = SUBJECTS[subject]()
            gc.collect()
            started = time.perf_counter()
            loop.run_until_complete(_drive(run_one, INSTANCES, in_flight))
            per_round[subject].append(INSTANCES / (time.perf_counter() - started))
            del run_one
    found = {s: statistics.median(per_round[s]) for s in order}
    ratio = {s: statistics.median([r / b for r, b in zip(per_round[s], per_round["baseline"],
                                                         strict=True)])
             for s in ("engine", "runner")}
    ratios[(in_flight, gc_mode)] = (found, ratio)
    summary = (f"in_flight={in_flight} gc={gc_mode}: "
               + ", ".join(f"{s} {found[s]:,.0f}/s" for s in order)
               + f"; engine/baseline {ratio['engine']:.2f}, runner/baseline {ratio['runner']:.2f}")
    assert ratio["engine"] >= TARGET_RATIO, summary
    assert ratio["runner"] >= TARGET_RATIO, summary
