"""Workflows for the embedding-API tests (imported by file path in worker processes)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from shardflow import BaseMachineStep, Edge, WorkflowContext, WorkflowDefinition

_arrived = 0
_all_here: asyncio.Event | None = None


class Rendezvous(BaseMachineStep):
    """Finishes only once ``expected`` instances are inside this step at the same time in
    this worker: it proves the instances run concurrently, without timing anything. Gives up
    after 30 s (the instance fails), so a serial caller fails instead of hanging."""
    store_result = True  # its return value is read from the output

    name = "rendezvous"

    async def execute(self, context: WorkflowContext) -> Any:
        global _arrived, _all_here
        if _all_here is None:
            _all_here = asyncio.Event()
        _arrived += 1
        if _arrived >= int(context.get("expected")):
            _all_here.set()
        await asyncio.wait_for(_all_here.wait(), 30)
        return {"pid": os.getpid()}


class Done(BaseMachineStep):
    name = "done"

    async def execute(self, context: WorkflowContext) -> Any:
        context.set("done", True)


rendezvous = WorkflowDefinition(
    name="rendezvous", steps={"rendezvous": Rendezvous(), "done": Done()},
    edges=[Edge("rendezvous", "done")], initial_step="rendezvous", terminal_steps={"done"},
)


class Counted(BaseMachineStep):
    """Appends the instance id to ``executions.log`` in ``SHARDFLOW_TEST_DIR``: one line per
    execution, across processes, so a test can tell how often each instance ran."""
    store_result = True  # its return value is read from the output

    name = "counted"

    async def execute(self, context: WorkflowContext) -> Any:
        fd = os.open(os.path.join(os.environ["SHARDFLOW_TEST_DIR"], "executions.log"),
                     os.O_CREAT | os.O_APPEND | os.O_WRONLY)
        try:
            os.write(fd, f"{context.get('id')}\n".encode())
        finally:
            os.close(fd)
        return context.get("id")


counted = WorkflowDefinition(
    name="counted", steps={"counted": Counted(), "done": Done()},
    edges=[Edge("counted", "done")], initial_step="counted", terminal_steps={"done"},
)
