"""Workflows for the pool/coordinator tests (imported by workers by file path).

Kept apart from ``flows.py`` so that the tests of the batch core do not depend on it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from shardflow import BaseMachineStep, WorkflowContext, WorkflowDefinition


def _one_step(name: str, step: BaseMachineStep) -> WorkflowDefinition:
    return WorkflowDefinition(name=name, steps={step.name: step}, edges=[],
                              initial_step=step.name, terminal_steps={step.name})


class BurnCpu(BaseMachineStep):
    """Holds its worker's CPU for ~2 ms (no await) and records which worker ran it."""
    store_result = True  # its return value is read from the output

    name = "burn"

    async def execute(self, context: WorkflowContext) -> Any:
        until = time.perf_counter() + 0.002
        while time.perf_counter() < until:
            pass
        return {"pid": os.getpid()}


cpu_bound = _one_step("cpu_bound", BurnCpu())


class CountRuns(BaseMachineStep):
    """Appends the instance id to ``runs.log`` once per execution: the side effect a test
    counts to prove that nothing ran twice."""
    store_result = True  # its return value is read from the output

    name = "count"

    async def execute(self, context: WorkflowContext) -> Any:
        path = Path(os.environ["SHARDFLOW_TEST_DIR"]) / "runs.log"
        fd = os.open(path, os.O_CREAT | os.O_APPEND | os.O_WRONLY)
        try:
            os.write(fd, b"%d\n" % context.get("id"))
        finally:
            os.close(fd)
        return {"ran": True}


counted = _one_step("counted", CountRuns())


class BlockLoop(BaseMachineStep):
    """Instance 3 blocks its worker's event loop (``time.sleep``), which only the worker's
    watchdog can end."""
    store_result = True  # its return value is read from the output

    name = "block"

    async def execute(self, context: WorkflowContext) -> Any:
        if context.get("id") == 3:
            time.sleep(60)  # noqa: ASYNC251 - blocking the loop is the point
        return {"ok": True}


blocking = _one_step("blocking", BlockLoop())
