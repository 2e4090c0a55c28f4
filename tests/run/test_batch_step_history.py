"""``context.step_history`` in batch: a step reads the steps that ran before it in its
instance, as in process, in compiled and interpreted plans; definitions that do not read it
keep no history (and the summary's step statistics stay right either way)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from shardflow import Edge, LocalExecutionEngine, WorkflowDefinition, WorkflowRegistry, run_batch
from shardflow.engine.history_need import reads_step_history
from shardflow.model.loader import load_workflow
from support.e2e import CliRun, write_jsonl

FLOWS = Path(__file__).parent / "history_flows.py"
CHAIN = [["first", "succeeded", "one"], ["flaky", "failed", None], ["flaky", "succeeded", None]]


def _target(name: str) -> str:
    return f"{FLOWS}:{name}"


@pytest.mark.parametrize(("name", "seen"), [
    ("compiled", CHAIN),
    ("interpreted", [["first", "succeeded", "one"], ["never", "skipped", None]]),
    ("declared", ["first", "flaky", "flaky"]),
])
def test_a_step_reads_the_history_of_its_instance_in_batch(name: str, seen: list) -> None:
    results = run_batch(_target(name), [{"id": i} for i in range(40)], workers=2)
    assert {r.status for r in results} == {"completed"}
    assert all(r.context["seen"] == seen for r in results)
    if name != "declared":
        assert all(r.context["first_ran"] is True for r in results)


def _seen_in_process(name: str) -> Any:
    """What the ``report`` step of workflow ``name`` saw, run once by an in-process engine."""
    registry = WorkflowRegistry()
    registry.register(load_workflow(_target(name)))

    async def main() -> Any:
        instance = await LocalExecutionEngine(registry).start_workflow(name, {"id": "x"})
        return instance.context.get("seen")

    return asyncio.run(main())


def test_batch_histories_read_as_in_process() -> None:
    batch = run_batch(_target("interpreted"), [{"id": "x"}], workers=1)[0].context["seen"]
    assert _seen_in_process("interpreted") == batch


def test_what_group_members_return_is_in_the_history_in_process_and_in_batch() -> None:
    expected = [["both/first", "succeeded", "one"], ["both/second", "succeeded", {"two": 2}]]
    assert sorted(_seen_in_process("grouped")) == expected
    batch = run_batch(_target("grouped"), [{"id": i} for i in range(4)], workers=1)
    assert [sorted(r.context["seen"]) for r in batch] == [expected] * 4


def test_only_definitions_whose_steps_read_it_keep_a_history() -> None:
    assert reads_step_history(load_workflow(_target("compiled")))
    assert reads_step_history(load_workflow(_target("declared")))
    quiet = load_workflow(_target("quiet"))
    assert not reads_step_history(quiet)
    by_condition = WorkflowDefinition(
        name="by_condition", steps=dict(quiet.steps), initial_step="first",
        edges=[Edge("first", "flaky", condition=lambda ctx: ctx.has_step_executed("first")),
               Edge("flaky", "report")], terminal_steps={"report"})
    assert reads_step_history(by_condition)


def test_summary_counts_steps_and_retries_of_a_definition_that_keeps_history(
        cli: CliRun, tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", ({"id": i} for i in range(30)))
    steps = {}
    for name in ("compiled", "quiet"):
        summary = tmp_path / f"{name}.json"
        done = cli("run", _target(name), "--input", str(inp), "--output",
                   str(tmp_path / f"{name}.jsonl"), "--workers", "2", "--no-journal",
                   "--summary-json", str(summary))
        assert done.returncode == 0, done.stderr
        steps[name] = {step: (row["executions"], row["retries"])
                       for step, row in orjson.loads(summary.read_bytes())["steps"].items()}
    assert steps["compiled"] == steps["quiet"] == {"first": (30, 0), "flaky": (60, 30),
                                                   "report": (30, 0)}


def test_a_resumed_instance_records_the_human_step_and_who_completed_it(
        cli: CliRun, tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", [{"id": "a"}])
    run_dir, out = tmp_path / "run", tmp_path / "out.jsonl"
    done = cli("run", _target("approval"), "--input", str(inp), "--output", str(out),
               "--workers", "1", "--no-progress", "--run-dir", str(run_dir))
    assert done.returncode == 0, done.stderr
    (task,) = [orjson.loads(line) for line in cli("tasks", "list", str(run_dir), "--json")
               .stdout.splitlines()]
    done = cli("tasks", "complete", task["id"], "--data", '{"ok": true}', "--user", "erin",
               "--run-dir", str(run_dir))
    assert done.returncode == 0, done.stderr
    done = cli("resume", str(run_dir), "--no-progress")
    assert done.returncode == 0, done.stderr
    (line,) = [orjson.loads(x) for x in out.read_bytes().splitlines()
               if orjson.loads(x)["status"] == "completed"]
    # the history of the steps run since the resume, as in process after a restore
    assert line["context"]["seen"] == [["approve", "succeeded", {"ok": True}]]
    assert line["context"]["user"] == "erin"
