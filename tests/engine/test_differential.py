"""Every shipped workload runs the same interpreted and compiled.

A static plan runs as a compiled schedule (``engine/schedule.py``), any plan can run on the
interpreter; both apply ``engine/attempt.py``'s rules, so they must produce the same records:
here each example and benchmark workload runs both ways, through the shard runner (result
lines, step statistics, failures) and through ``LocalExecutionEngine`` (status, context, step
history), and the records are compared field by field (timings aside)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from shardflow import BaseMachineStep, Edge, WorkflowContext, WorkflowDefinition
from shardflow._clock import LoopClock
from shardflow.bench.workloads import WORKLOADS
from shardflow.engine import interpreter as interpreter_module
from shardflow.engine import shard as shard_module
from shardflow.engine.local import LocalExecutionEngine
from shardflow.engine.rows import JobKind
from shardflow.engine.schedule import schedule_for
from shardflow.engine.shard import ShardJob, ShardRunner
from shardflow.examples import approvals, chord, notify, race
from shardflow.limits.local import LocalGate
from shardflow.model.registry import WorkflowRegistry


class Refuse(BaseMachineStep):
    """Fails the instances whose id is odd (a failure to compare, mid fork/join)."""

    name = "send_slack"

    async def execute(self, context: WorkflowContext) -> Any:
        if context.get("id") % 2:
            raise PermissionError("slack refused")
        context.set("slack_sent", True)


def _failing_notify() -> WorkflowDefinition:
    base = notify.build("notify_failing")
    return WorkflowDefinition(name=base.name, steps={**base.steps, "send_slack": Refuse()},
                              edges=[Edge(e.source, e.target) for e in base.edges],
                              initial_step=base.initial_step, terminal_steps=base.terminal_steps)


WORKFLOWS = {**{f"bench:{k}": v for k, v in WORKLOADS.items()},
             "notify": notify.workflow, "notify_failing": _failing_notify(),
             "chord": chord.workflow, "race": race.workflow, "approvals": approvals.workflow}
STATIC = {"bench:forkjoin", "bench:forkjoin-io", "bench:linear10", "bench:limit50",
          "notify", "notify_failing"}
LIMITS = {"api": 50}
INSTANCES = 4


def _interpreted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(interpreter_module, "schedule_for", lambda plan, variant: None)
    monkeypatch.setattr(shard_module, "schedule_for", lambda plan, variant: None)


def _gate() -> LocalGate:
    return LocalGate(LIMITS, {}, LoopClock())


async def _shard_records(definition: WorkflowDefinition) -> tuple[Any, ...]:
    runner = ShardRunner(definition, gate=_gate())
    out = await runner.run_batch(ShardJob(i, i, 1, JobKind.NEW, orjson.dumps({"id": i}))
                                 for i in range(INSTANCES))
    records = sorted((orjson.loads(line) for line in out.lines), key=lambda r: r["id"])
    for record in records:
        del record["started_at"], record["duration_ms"]
        if record["error"]:
            del record["error"]["traceback"]
        for task in record.get("tasks", ()):  # new ids and times for each open task
            del task["id"], task["created_at"]
    rows = sorted((seq, status) for seq, status, _, _ in out.rows)
    executions = {step: row[0] for step, row in runner.step_stats().items()}
    return records, rows, executions, runner.failures()


async def _engine_records(definition: WorkflowDefinition) -> list[Any]:
    registry = WorkflowRegistry()
    registry.register_definition(definition)
    engine = LocalExecutionEngine(registry, limits=LIMITS)
    records = []
    for i in range(INSTANCES):
        instance = await engine.start_workflow(definition.name, {"id": i})
        error = instance.error and (instance.error.step, instance.error.type,
                                    instance.error.message)
        records.append((instance.status, instance.context.data, error,
                        [(r.node, r.status, r.attempts, r.error) for r in instance.history]))
    return records


def test_the_static_workloads_compile() -> None:
    compiled = {name for name, definition in WORKFLOWS.items()
                if schedule_for(definition.plan, (True, True)) is not None}
    assert compiled == STATIC


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_a_workload_records_the_same_interpreted_and_compiled(
        name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    definition = WORKFLOWS[name]
    compiled = asyncio.run(_shard_records(definition)), asyncio.run(_engine_records(definition))
    _interpreted(monkeypatch)
    interpreted = asyncio.run(_shard_records(definition)), asyncio.run(_engine_records(definition))
    assert compiled == interpreted
    (records, _, _, failures), _ = compiled
    assert [r["id"] for r in records] == list(range(INSTANCES))
    if name == "notify_failing":  # the failure is part of what is compared
        assert [r["status"] for r in records] == ["completed", "failed"] * 2
        assert failures == {"send_slack": {"PermissionError": 2}}
