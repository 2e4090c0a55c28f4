"""Workflows whose instances fail in ways a step's ``except Exception`` never sees, run by
``tests/batch/test_worker_failures.py`` in real worker processes (imported by file path).

``SHARDFLOW_RAISE`` names what the ``raise_in_branch`` step of instance 3 raises, in a branch
of a fork (a task of its own, where ``KeyboardInterrupt`` or ``SystemExit`` escaping would
stop the worker's whole event loop).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from shardflow import BaseHumanStep, BaseMachineStep, Edge, WorkflowContext, WorkflowDefinition


class Start(BaseMachineStep):
    name = "start"

    async def execute(self, context: WorkflowContext) -> Any:
        context.set("started", True)


class Calm(BaseMachineStep):
    name = "calm"

    async def execute(self, context: WorkflowContext) -> Any:
        await asyncio.sleep(0)
        context.set("calm", True)


class Special(BaseException):
    """A BaseException subclass of the user's own."""


_RAISED: dict[str, Any] = {
    "CancelledError": asyncio.CancelledError,
    "KeyboardInterrupt": KeyboardInterrupt,
    "SystemExit": SystemExit,
    "Special": Special,
}


class RaiseInBranch(BaseMachineStep):
    name = "raise_in_branch"

    async def execute(self, context: WorkflowContext) -> Any:
        await asyncio.sleep(0)
        if context.get("id") == 3:
            raise _RAISED[os.environ["SHARDFLOW_RAISE"]]("raised by the step")
        context.set("raised", False)


class Join(BaseMachineStep):
    name = "join"

    async def execute(self, context: WorkflowContext) -> Any:
        context.set("joined", True)


raising = WorkflowDefinition(
    name="raising",
    steps={"start": Start(), "calm": Calm(), "raise_in_branch": RaiseInBranch(), "join": Join()},
    edges=[Edge("start", "calm"), Edge("start", "raise_in_branch"), Edge("calm", "join"),
           Edge("raise_in_branch", "join")],
    initial_step="start", terminal_steps={"join"},
)


_STEPS_RAN = False
"""Set once a step has run in this process: validation (at load) is over by then."""


class Approve(BaseHumanStep):
    """Its form schema holds a set (not JSON) once steps have run, so the workflow passes
    the definition-time check and the failure happens where the instance parks."""

    name = "approve"

    @property
    def form_schema(self) -> dict[str, Any]:
        if _STEPS_RAN:
            return {"type": "object", "default": {1, 2}}
        return {"type": "object"}


class Route(BaseMachineStep):
    name = "route"

    async def execute(self, context: WorkflowContext) -> Any:
        global _STEPS_RAN
        _STEPS_RAN = True
        context.set("needs_approval", context.get("id") == 2)


class WorkerOnlyBadSchema(BaseHumanStep):
    """Its form schema is valid in the coordinator and not JSON in worker processes: the
    workers' own check of the definition must stop the run with the problem named."""

    name = "approve"

    @property
    def form_schema(self) -> dict[str, Any]:
        if "SHARDFLOW_WORKER_SPEC" in os.environ:
            return {"type": "object", "default": {1, 2}}
        return {"type": "object"}


bad_schema = WorkflowDefinition(
    name="bad_schema",
    steps={"route": Route(), "approve": Approve(), "done": Join()},
    edges=[Edge("route", "approve", condition=lambda c: c.get("needs_approval")),
           Edge("route", "done", condition=lambda c: not c.get("needs_approval"))],
    initial_step="route", terminal_steps={"approve", "done"},
)

invalid_in_workers = WorkflowDefinition(
    name="invalid_in_workers",
    steps={"route": Route(), "approve": WorkerOnlyBadSchema(), "done": Join()},
    edges=[Edge("route", "approve", condition=lambda c: c.get("needs_approval")),
           Edge("route", "done", condition=lambda c: not c.get("needs_approval"))],
    initial_step="route", terminal_steps={"approve", "done"},
)


class SignalThenWait(BaseMachineStep):
    """Instance 100 tells the test (through a FIFO) that the run is under way, then waits to
    be killed; the others take a few milliseconds each, so many are in flight, most of them
    waiting for a slot of the ``slots`` limit (run with ``--limit slots=N``)."""

    name = "work"
    limit = "slots"

    async def execute(self, context: WorkflowContext) -> Any:
        if context.get("id") == 100:
            with open(Path(os.environ["SHARDFLOW_TEST_DIR"]) / "run.fifo", "w") as fifo:  # noqa: ASYNC230
                fifo.write(str(os.getpid()))
            await asyncio.sleep(3600)
        await asyncio.sleep(0.005)


long_running = WorkflowDefinition(
    name="long_running", steps={"work": SignalThenWait()}, edges=[],
    initial_step="work", terminal_steps={"work"},
)
