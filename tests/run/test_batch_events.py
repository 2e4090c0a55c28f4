"""Lifecycle events of batch instances reach the embedding process (``BatchExecutor(...,
event_bus=bus)``) and ``shardflow run/resume --events FILE``, from real worker processes,
each instance's in the order they happened."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson

from shardflow import BatchExecutor, EventBus
from shardflow.events import WorkflowEvent
from support.e2e import CliRun, write_jsonl

FLOW = f"{Path(__file__).parent / 'event_flows.py'}:workflow"

WAITS = [("workflow.started", None), ("step.started", "validate"),
         ("step.completed", "validate"), ("step.started", "charge"),
         ("step.completed", "charge"), ("human_task.created", "approve"),
         ("workflow.waiting", "approve")]
FAILS = [("workflow.started", None), ("step.started", "validate"), ("step.failed", "validate"),
         ("workflow.failed", None)]
SKIPS = [("workflow.started", None), ("step.started", "validate"),
         ("step.completed", "validate"), ("step.started", "charge"), ("step.skipped", "charge"),
         ("workflow.completed", None)]
INPUTS = [{"id": "waits", "value": 1}, {"id": 7, "value": -1}, {"id": "skips", "skip": True}]


def _by_instance(events: list[tuple[Any, str, str | None]]) -> dict[Any, list[tuple[str, Any]]]:
    out: dict[Any, list[tuple[str, Any]]] = {}
    for instance_id, kind, step in events:
        out.setdefault(instance_id, []).append((kind, step))
    return out


def test_batch_executor_subscribers_get_each_instances_events_in_order_before_its_result(
        ) -> None:
    bus = EventBus()
    seen: list[tuple[Any, str, str | None]] = []

    async def subscriber(event: WorkflowEvent) -> None:
        await asyncio.sleep(0)  # an async subscriber that yields is awaited too
        seen.append((event.instance_id, event.event_type, getattr(event, "step_name", None)))

    bus.subscribe(subscriber)

    async def main() -> dict[Any, str]:
        statuses = {}
        async with BatchExecutor(FLOW, workers=2, event_bus=bus) as ex:
            for future in asyncio.as_completed([ex.submit(d) for d in INPUTS]):
                result = await future
                statuses[result.id] = result.status
                # the instance's last event was published before its result resolved
                assert _by_instance(seen)[result.id][-1][0].startswith("workflow.")
        return statuses

    statuses = asyncio.run(main())
    assert statuses == {"waits": "waiting", 7: "failed", "skips": "completed"}
    assert _by_instance(seen) == {"waits": WAITS, 7: FAILS, "skips": SKIPS}


def test_events_carry_the_fields_of_their_type() -> None:
    bus = EventBus()
    events: list[WorkflowEvent] = []
    bus.subscribe(events.append, "workflow.failed", "human_task.created", "workflow.started")

    async def main() -> None:
        async with BatchExecutor(FLOW, workers=1, event_bus=bus) as ex:
            await asyncio.gather(*(ex.submit(d) for d in INPUTS[:2]))

    asyncio.run(main())
    by_type = {e.event_type: e for e in events}
    assert set(by_type) == {"workflow.failed", "human_task.created", "workflow.started"}
    failed = by_type["workflow.failed"]
    assert (failed.instance_id, failed.failed_step, failed.error_type) == (  # type: ignore[attr-defined]
        7, "validate", "ValueError")
    assert "negative" in failed.error  # type: ignore[attr-defined]
    task = by_type["human_task.created"]
    assert task.title == "Approve the charge"  # type: ignore[attr-defined]
    assert task.timestamp.tzinfo is not None
    assert by_type["workflow.started"].workflow_name == "evented"  # type: ignore[attr-defined]


def test_cli_events_file_holds_run_and_resume_events_as_jsonl(cli: CliRun,
                                                              tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", INPUTS)
    events_path = tmp_path / "events.jsonl"
    run_dir = tmp_path / "run"
    proc = cli("run", FLOW, "--input", str(inp), "--output", str(tmp_path / "out.jsonl"),
               "--workers", "2", "--no-progress", "--run-dir", str(run_dir),
               "--events", str(events_path))
    assert proc.returncode == 1, proc.stderr  # one instance failed
    first = [orjson.loads(line) for line in events_path.read_bytes().splitlines()]
    assert _by_instance([(e["instance_id"], e["event"], e.get("step_name")) for e in first]) == {
        "waits": WAITS, "7": FAILS, "skips": SKIPS}
    assert all(isinstance(e["timestamp"], str) for e in first)

    listed = cli("tasks", "list", str(run_dir), "--json")
    (task,) = [orjson.loads(line) for line in listed.stdout.splitlines()]
    done = cli("tasks", "complete", task["id"], "--data", '{"approved": true}',
               "--run-dir", str(run_dir), "--user", "erin")
    assert done.returncode == 0, done.stderr
    resumed = cli("resume", str(run_dir), "--no-progress", "--events", str(events_path))
    assert resumed.returncode == 1, resumed.stderr  # the run still holds its failure
    lines = [orjson.loads(line) for line in events_path.read_bytes().splitlines()]
    assert lines[:len(first)] == first  # appended, never replaced
    added = lines[len(first):]
    assert [(e["instance_id"], e["event"], e.get("step_name")) for e in added] == [
        ("waits", "human_task.completed", "approve"), ("waits", "workflow.completed", None)]
    assert added[0]["form_data"] == {"approved": True} and added[0]["task_id"] == task["id"]
    assert added[0]["completed_by"] == "erin"  # as the in-process engine tells it


def test_an_events_file_that_cannot_be_opened_is_one_error_line_before_anything_runs(
        cli: CliRun, tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", INPUTS[2:])
    out = tmp_path / "out.jsonl"
    proc = cli("run", FLOW, "--input", str(inp), "--output", str(out), "--no-progress",
               "--no-journal", "--events", str(tmp_path / "missing" / "events.jsonl"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"shardflow: error: --events {tmp_path / 'missing' / 'events.jsonl'}: "
        "No such file or directory"]
    assert not out.exists()
