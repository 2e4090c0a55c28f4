"""One data contract in both modes: the same bad values, written by the same step, are refused
identically by ``LocalExecutionEngine`` and by ``shardflow run`` (real worker processes).

The workflow module is written to a temporary directory, run by ``shardflow run`` as a file
target and imported here for the in-process run, so both modes run exactly the same code.
"""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shardflow import LocalExecutionEngine, WorkflowRegistry, WorkflowStatus
from support.e2e import CliRun, by_id, flow, read_results, write_jsonl

MODULE = '''
from datetime import date, datetime
from shardflow import BaseMachineStep, WorkflowDefinition

BAD = {
    "nan": float("nan"), "infinity": float("inf"), "two_pow_64": 2**64,
    "below_i64": -(2**63) - 1, "tuple": (1, 2), "set": {1, 2}, "bytes": b"raw",
    "date": date(2024, 1, 2), "datetime": datetime(2024, 1, 2, 3, 4), "non_str_key": {1: "one"},
    "lone_surrogate": "caf\\udce9",
}


class Emit(BaseMachineStep):
    async def execute(self, context):
        value = BAD[context.get("case")]
        if context.get("nested"):
            value = {"payload": [0, value]}
        context.set("result", value)


workflow = WorkflowDefinition(name="contract", steps={"emit": Emit()}, edges=[],
                              initial_step="emit", terminal_steps={"emit"})
'''

CASES = ["nan", "infinity", "two_pow_64", "below_i64", "tuple", "set", "bytes", "date",
         "datetime", "non_str_key", "lone_surrogate"]
INPUTS = [{"id": f"{case}-{nested}", "case": case, "nested": nested}
          for case in CASES for nested in (False, True)]


@pytest.fixture(scope="module")
def module_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("contract") / "contract_flow.py"
    path.write_text(MODULE)
    return path


@pytest.fixture(scope="module")
def in_process(module_path: Path) -> dict[str, dict[str, Any]]:
    """Each input's outcome from LocalExecutionEngine: status and error fields."""
    spec = importlib.util.spec_from_file_location("contract_flow_in_process", module_path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    registry = WorkflowRegistry()
    registry.register_definition(module.workflow)

    async def run_all() -> dict[str, dict[str, Any]]:
        engine = LocalExecutionEngine(registry)
        outcomes = {}
        for data in INPUTS:
            instance = await asyncio.wait_for(engine.start_workflow("contract", data), 30)
            error = instance.error
            outcomes[data["id"]] = {"status": instance.status.value,
                                    "type": error and error.type, "step": error and error.step,
                                    "message": error and error.message}
        return outcomes

    return asyncio.run(run_all())


@pytest.fixture(scope="module")
def in_batch(module_path: Path) -> dict[str, dict[str, Any]]:
    """Each input's output record from ``shardflow run --workers 1``."""
    folder = module_path.parent
    out = folder / "out.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "shardflow", "run", f"{module_path}:workflow",
         "--input", str(write_jsonl(folder / "in.jsonl", INPUTS)), "--output", str(out),
         "--workers", "1", "--run-dir", str(folder / "run"), "--no-progress"],
        capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1, proc.stderr  # failed instances, not a crashed run
    return {record["id"]: record for record in read_results(out)}


@pytest.mark.parametrize("case", CASES)
def test_a_bad_value_is_refused_identically_in_process_and_in_batch(
        case: str, in_process: dict[str, dict[str, Any]],
        in_batch: dict[str, dict[str, Any]]) -> None:
    for nested in (False, True):
        key = f"{case}-{nested}"
        local, record = in_process[key], in_batch[key]
        assert local["status"] == WorkflowStatus.FAILED.value == record["status"]
        assert record["error"] is not None, record
        assert local["type"] == "ContextValueError" == record["error"]["type"]
        assert local["step"] == "emit" == record["error"]["step"]
        assert local["message"] == record["error"]["message"]
        assert local["message"].startswith("context key 'result' written by step 'emit' holds")
        if nested:
            assert " at 'payload[1]' " in local["message"]
        assert record["context"] == {"id": key, "case": case, "nested": nested}


def test_an_input_integer_orjson_would_change_is_an_invalid_input_record(
        cli: CliRun, tmp_path: Path) -> None:
    inp = tmp_path / "in.jsonl"
    inp.write_bytes(b'{"id": 1, "n": 123456789012345678901234}\n{"id": 2, "n": 18446744073709551615}\n')
    out = tmp_path / "out.jsonl"
    proc = cli("run", flow("echo"), "--input", str(inp), "--output", str(out), "--workers", "1",
               "--run-dir", str(tmp_path / "run"))
    assert proc.returncode == 1, proc.stderr
    invalid, completed = (by_id([r for r in read_results(out) if r["status"] == status])
                          for status in ("invalid_input", "completed"))
    error = invalid[None]["error"]
    assert (error["source"], error["line"]) == (str(inp), 1)
    assert "integer 123456789012345678901234 at n exceeds 64-bit range" in error["message"]
    assert list(completed) == [2] and completed[2]["context"]["n"] == 2**64 - 1


def test_a_form_schema_that_is_not_json_stops_the_run_before_it_starts(
        cli: CliRun, tmp_path: Path) -> None:
    """It used to pass validation and then hang the run: the worker could not send the task."""
    module = tmp_path / "set_schema_flow.py"
    module.write_text(
        "from shardflow import BaseHumanStep, WorkflowDefinition\n\n\n"
        "class Tags(BaseHumanStep):\n"
        "    form_schema = {'type': 'object', 'properties': {'tags': {'default': {1, 2}}}}\n\n\n"
        "workflow = WorkflowDefinition(name='tags', steps={'tags': Tags()}, edges=[],\n"
        "                              initial_step='tags', terminal_steps={'tags'})\n")
    proc = cli("run", f"{module}:workflow", "--generate", "3", "--workers", "1",
               "--output", str(tmp_path / "out.jsonl"), "--run-dir", str(tmp_path / "run"),
               timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert ("human step 'tags': form_schema is not JSON: it holds a set at "
            "'properties.tags.default'") in proc.stderr
