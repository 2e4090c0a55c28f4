"""Compiled schedules (engine/schedule.py) behave exactly as the interpreter does.

Random static graphs (machine steps, unconditional edges: forks, joins, chains, several
sinks, forks straight into joins) run both ways, with steps that suspend a varying number of
times, write plain, dotted and shared keys, fail, retry and are limited; the outcome (status,
context, error), the history in execution order and the statistics must be the same.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from shardflow import BaseMachineStep, Edge, WorkflowContext, WorkflowDefinition
from shardflow._clock import LoopClock
from shardflow.engine import interpreter as interpreter_module
from shardflow.engine.runner import InstanceOutcome, InstanceRunner
from shardflow.engine.schedule import (
    MAX_JOIN_DEPTH,
    _Emitter,
    is_static,
    join_depth,
    schedule_for,
)
from shardflow.engine.stepstats import StepStats
from shardflow.limits.local import LocalGate
from shardflow.model.groups import ParallelGroup


class Probe(BaseMachineStep):
    """Writes what it saw (so a context difference shows), after ``pauses`` suspensions."""

    def __init__(self, name: str, pauses: int, writes: str, fails: int = 0,
                 retries: int = 0, limit: str | None = None) -> None:
        self.name = name
        self.pauses = pauses
        self.writes = writes
        self.fails = fails
        self.retries = retries
        self.retry_delay_seconds = 0.0
        self.limit = limit
        self.calls: dict[str, int] = {}

    async def execute(self, context: WorkflowContext) -> Any:
        for _ in range(self.pauses):
            await asyncio.sleep(0)
        seen = sorted(context.keys())
        calls = self.calls[context.instance_id] = self.calls.get(context.instance_id, 0) + 1
        if calls <= self.fails:
            raise RuntimeError(f"{self.name} fails attempt {calls}")
        if self.writes == "dotted":
            context.set(f"tree.{self.name}", len(seen))
        elif self.writes == "shared":
            context.set("shared", "same")  # one value from every branch: no conflict
        elif self.writes == "clash":
            context.set("clash", self.name)  # two branches meeting at a join conflict
        else:
            context.set(self.name, seen)
        return {"seen": len(seen)} if self.pauses % 2 else None


def random_dag(rng: random.Random) -> tuple[list[str], list[Edge]]:
    """Any acyclic graph: forks often lead straight into joins."""
    size = rng.randint(2, 9)
    names = [f"n{i}" for i in range(size)]
    edges: list[Edge] = []
    for i in range(1, size):  # every node reachable: one edge from an earlier node at least
        sources = rng.sample(range(i), k=min(i, rng.choice([1, 1, 2, 3])))
        edges.extend(Edge(names[j], names[i]) for j in sorted(sources))
    return names, edges


def series_parallel(rng: random.Random) -> tuple[list[str], list[Edge]]:
    """Chains that fork into chains and join again (the usual workflow shape), sometimes
    ending in several sinks."""
    names: list[str] = []
    edges: list[Edge] = []

    def new() -> str:
        names.append(f"n{len(names)}")
        return names[-1]

    def block(depth: int) -> tuple[str, list[str]]:
        """(head, tails) of a random block."""
        head = new()
        tails = [head]
        for _ in range(rng.randint(0, 2)):
            if depth < 3 and rng.random() < 0.6:  # a fork of 2-3 blocks
                branches = [block(depth + 1) for _ in range(rng.randint(2, 3))]
                for tail in tails:
                    edges.extend(Edge(tail, h) for h, _ in branches)
                ends = [t for _, ts in branches for t in ts]
                if rng.random() < 0.15:
                    return head, ends  # no join: each branch ends its own path
                tails = [new()]
                edges.extend(Edge(t, tails[0]) for t in ends)
            else:
                nxt = new()
                edges.extend(Edge(t, nxt) for t in tails)
                tails = [nxt]
        return head, tails

    block(0)
    return names, edges


def random_definition(seed: int) -> WorkflowDefinition:
    rng = random.Random(seed)
    names, edges = (random_dag if seed % 3 == 0 else series_parallel)(rng)
    rng.shuffle(edges)  # declaration order decides merges: vary it
    steps = {}
    for name in names:
        steps[name] = Probe(
            name, pauses=rng.choice([0, 0, 1, 2, 3]),
            writes=rng.choice(["plain"] * 6 + ["dotted", "shared", "clash"]),
            fails=rng.choice([0] * 12 + [1, 5]), retries=rng.choice([0] * 4 + [2]),
            limit=rng.choice([None] * 5 + ["pool"]),
        )
    return WorkflowDefinition(name=f"random{seed}", steps=steps, edges=edges,
                              initial_step="n0", merge_policy=rng.choice(["error", "last_wins"]))


def interpreted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(interpreter_module, "schedule_for", lambda plan, variant: None)


def summary(outcome: InstanceOutcome) -> tuple[Any, ...]:
    error = (outcome.error.step, outcome.error.type, outcome.error.message) if outcome.error else None
    history = [(r.node, r.status, r.attempts, r.error) for r in outcome.history
               if r.status != "canceled"]
    # A failure cancels the running siblings in the order of a set of tasks (by address):
    # which were cancelled is part of the behaviour, their order is not.
    cancelled = sorted(r.node for r in outcome.history if r.status == "canceled")
    return outcome.status, outcome.context, error, history, cancelled


async def run_many(definition: WorkflowDefinition, *, counted: bool, gated: bool,
                   instances: int = 6) -> tuple[list[tuple[Any, ...]], Any]:
    for step in definition.steps.values():
        assert isinstance(step, Probe)
        step.calls.clear()
    stats = StepStats() if counted else None
    gate = LocalGate({"pool": 2}, {}, LoopClock()) if gated else None
    runner = InstanceRunner(definition, stats=stats, gate=gate)
    outcomes = await asyncio.gather(*[runner.run(f"i{i}", {"i": i}) for i in range(instances)])
    counts = {path: (int(s[0]), int(s[4])) for path, s in stats.rows().items()} if stats else {}
    return [summary(o) for o in outcomes], counts


SEEDS = range(240)


@pytest.mark.parametrize("seed", SEEDS)
def test_random_static_graph_runs_as_interpreted(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(seed * 7919)
    counted, gated = rng.random() < 0.5, rng.random() < 0.5
    definition = random_definition(seed)
    assert is_static(definition.plan)
    compiled = asyncio.run(run_many(definition, counted=counted, gated=gated))
    assert definition.plan.schedules, "the compiled schedule did not run"
    with monkeypatch.context() as patch:
        interpreted(patch)
        expected = asyncio.run(run_many(random_definition(seed), counted=counted, gated=gated))
    assert compiled == expected


def test_the_random_graphs_cover_what_they_claim() -> None:
    """The seeds above include completions, failures, conflicts, retries, forks into joins,
    several sinks and deep joins (else the comparison proves little)."""
    seen: set[str] = set()
    for seed in SEEDS:
        definition = random_definition(seed)
        plan = definition.plan
        outcomes, _ = asyncio.run(run_many(definition, counted=False, gated=False, instances=1))
        status, _, error, history, _ = outcomes[0]
        seen.add(str(status))
        if error is not None:
            seen.add(error[1])
        if any(attempts > 1 for _, _, attempts, _ in history):
            seen.add("retried")
        if sum(1 for n in plan.nodes.values() if not n.outgoing) > 1:
            seen.add("several sinks")
        if any(len(n.outgoing) > 1 and any(plan.in_degree[e.target] > 1 for e in n.outgoing)
               for n in plan.nodes.values()):
            seen.add("fork into join")
        elif any(d > 2 for d in plan.in_degree.values()):
            seen.add("three-way join, no fork into a join")
        emitter = _Emitter(plan, (False, False))
        for target in (node for node, degree in plan.in_degree.items() if degree > 1):
            seen.add("join tail inlined" if emitter.simple_tail(target)
                     else "join tail in a function")
    assert {"completed", "failed", "RuntimeError", "MergeConflictError", "retried",
            "several sinks", "fork into join", "three-way join, no fork into a join",
            "join tail inlined", "join tail in a function"} <= seen, seen


def test_a_failing_branch_cancels_its_running_siblings_in_a_compiled_schedule() -> None:
    started: list[str] = []
    finished: list[str] = []
    release = asyncio.Event()

    class Slow(BaseMachineStep):
        async def execute(self, context: WorkflowContext) -> Any:
            started.append(self.name)
            try:
                await release.wait()
            finally:
                finished.append(self.name)

    class Boom(BaseMachineStep):
        async def execute(self, context: WorkflowContext) -> Any:
            raise ValueError("boom")

    slow_a, slow_b, boom = Slow(), Slow(), Boom()
    slow_a.name, slow_b.name, boom.name = "a", "b", "boom"
    start = Probe("start", 0, "plain")
    definition = WorkflowDefinition(
        name="cancel", steps={"start": start, "a": slow_a, "b": slow_b, "boom": boom},
        edges=[Edge("start", "a"), Edge("start", "b"), Edge("start", "boom")],
        initial_step="start")
    outcome = asyncio.run(InstanceRunner(definition).run("x", {}))
    assert definition.plan.schedules
    assert outcome.status == "failed" and outcome.error is not None
    assert (outcome.error.step, outcome.error.type) == ("boom", "ValueError")
    assert sorted(started) == sorted(finished) == ["a", "b"]  # cancelled, and their finally ran
    statuses = {r.node: r.status for r in outcome.history}
    assert statuses == {"start": "completed", "a": "canceled", "b": "canceled",
                        "boom": "failed"}


def test_a_plan_with_a_group_is_interpreted() -> None:
    group = ParallelGroup(Probe("x", 0, "plain"), Probe("y", 1, "plain"), name="both")
    definition = WorkflowDefinition(name="grouped", steps={"both": group}, edges=[],
                                    initial_step="both")
    assert not is_static(definition.plan)
    assert schedule_for(definition.plan, (False, False)) is None
    outcome = asyncio.run(InstanceRunner(definition).run("g", {}))
    assert outcome.status == "completed" and set(outcome.context) == {"x", "y"}


def test_a_failure_in_a_compiled_step_shows_the_generated_line_in_its_traceback() -> None:
    boom = Probe("boom", 0, "plain", fails=1)
    definition = WorkflowDefinition(name="trace", steps={"boom": boom}, edges=[],
                                    initial_step="boom")
    outcome = asyncio.run(InstanceRunner(definition).run("t", {}))
    assert outcome.error is not None
    assert "shardflow schedule" in outcome.error.traceback
    assert "result = await S_n0.execute(ctx)" in outcome.error.traceback


def _diamonds(count: int) -> WorkflowDefinition:
    """``count`` fork/joins one after the other: s0 -> (a0 | b0) -> s1 -> ..."""
    steps: dict[str, Any] = {}
    edges: list[Edge] = []
    for i in range(count):
        for name in (f"s{i}", f"a{i}", f"b{i}"):
            steps[name] = Probe(name, 0, "plain")
        edges += [Edge(f"s{i}", f"a{i}"), Edge(f"s{i}", f"b{i}"),
                  Edge(f"a{i}", f"s{i + 1}"), Edge(f"b{i}", f"s{i + 1}")]
    steps[f"s{count}"] = Probe(f"s{count}", 0, "plain")
    return WorkflowDefinition(name=f"diamonds{count}", steps=steps, edges=edges,
                              initial_step="s0")


def test_deep_chains_of_joins_stay_interpreted_and_run() -> None:
    """Each join of a schedule adds a coroutine level; 400 joins in a row would pass the
    recursion limit on every resumption. Such a plan is interpreted, and completes."""
    shallow, deep = _diamonds(MAX_JOIN_DEPTH), _diamonds(400)
    assert join_depth(shallow.plan) == MAX_JOIN_DEPTH and join_depth(deep.plan) == 400
    assert schedule_for(shallow.plan, (False, False)) is not None
    assert schedule_for(deep.plan, (False, False)) is None
    for definition in (shallow, deep):
        outcome = asyncio.run(InstanceRunner(definition).run("d", {}))
        assert outcome.status == "completed", outcome.error
        assert len(outcome.history) == len(definition.steps)
