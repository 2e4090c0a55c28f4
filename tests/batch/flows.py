"""Workflows the batch tests run in real worker processes (imported there by file path).

Behaviour that must happen once per run (killing a worker, signalling the test) is keyed on
marker files in the directory named by ``SHARDFLOW_TEST_DIR``, so a re-run instance on a
replacement worker behaves normally.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

from shardflow import (
    BaseMachineStep,
    Edge,
    ParallelGroup,
    WorkflowContext,
    WorkflowDefinition,
)


def _dir() -> Path:
    return Path(os.environ["SHARDFLOW_TEST_DIR"])


def _once(name: str) -> bool:
    """True the first time it is called for ``name`` in this test (across processes)."""
    try:
        fd = os.open(_dir() / f"{name}.marker", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def _record(filename: str, text: str) -> None:
    fd = os.open(_dir() / filename, os.O_CREAT | os.O_APPEND | os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


class Double(BaseMachineStep):
    store_result = True  # its return value is read from the output
    name = "double"

    async def execute(self, context: WorkflowContext) -> Any:
        return {"value": context.get("value", 0) * 2}


class Label(BaseMachineStep):
    name = "label"

    async def execute(self, context: WorkflowContext) -> Any:
        context.set("label", f"item-{context.get('id')}")


def _two_step(name: str, first: BaseMachineStep) -> WorkflowDefinition:
    return WorkflowDefinition(
        name=name, steps={"double": first, "label": Label()},
        edges=[Edge("double", "label")], initial_step="double", terminal_steps={"label"},
    )


echo = _two_step("echo", Double())


class NotJson(BaseMachineStep):
    store_result = True  # its return value is read from the output
    name = "double"

    async def execute(self, context: WorkflowContext) -> Any:
        if context.get("id") == 3:
            return {1, 2}  # a set is not JSON: this instance alone fails
        return {"value": context.get("value", 0) * 2}


not_json = _two_step("not_json", NotJson())


class CrashOnce(BaseMachineStep):
    """SIGKILLs its own worker the first time instance 50 runs (as the OOM killer would)."""
    store_result = True  # its return value is read from the output

    name = "double"

    async def execute(self, context: WorkflowContext) -> Any:
        await asyncio.sleep(0)
        if context.get("id") == 50 and _once("crash"):
            os.kill(os.getpid(), signal.SIGKILL)
        return {"value": context.get("value", 0) * 2}


crash_once = _two_step("crash_once", CrashOnce())


class AlwaysCrash(BaseMachineStep):
    """Instance 7 takes its worker down every time it runs."""
    store_result = True  # its return value is read from the output

    name = "double"

    async def execute(self, context: WorkflowContext) -> Any:
        await asyncio.sleep(0)
        if context.get("id") == 7:
            os._exit(13)
        return {"value": context.get("value", 0) * 2}


always_crash = _two_step("always_crash", AlwaysCrash())


class SignalThenWait(BaseMachineStep):
    """Instance 200 tells the test its worker's pid through a FIFO, then waits to be killed;
    every other instance takes a few milliseconds, so many are in flight at that moment."""
    store_result = True  # its return value is read from the output

    name = "double"

    async def execute(self, context: WorkflowContext) -> Any:
        if context.get("id") == 200 and _once("signal"):
            with open(_dir() / "pid.fifo", "w") as fifo:  # noqa: ASYNC230 - blocks on purpose
                fifo.write(str(os.getpid()))
            await asyncio.sleep(3600)
        await asyncio.sleep(0.002)
        return {"value": context.get("value", 0) * 2}


killed_mid_run = _two_step("killed_mid_run", SignalThenWait())


class BlockLoop(BaseMachineStep):
    """Instance 3 blocks the event loop (time.sleep), which no timeout can cancel."""
    store_result = True  # its return value is read from the output

    name = "double"

    async def execute(self, context: WorkflowContext) -> Any:
        if context.get("id") == 3:
            time.sleep(30)  # noqa: ASYNC251 - blocking the loop is the point
        await asyncio.sleep(0.001)
        return {"value": context.get("value", 0) * 2}


blocking = _two_step("blocking", BlockLoop())


class EmailApi(BaseMachineStep):
    """Limited to ``email_api`` slots across all workers; logs pid, start and end."""

    name = "send_email"
    limit = "email_api"

    async def execute(self, context: WorkflowContext) -> Any:
        start = time.monotonic()
        await asyncio.sleep(0.002)
        _record("email.log", f"{os.getpid()} {start} {time.monotonic()}\n")


class Sms(BaseMachineStep):
    name = "send_sms"
    rate_limit = "sms"

    async def execute(self, context: WorkflowContext) -> Any:
        _record("sms.log", f"{time.monotonic()}\n")


limited = WorkflowDefinition(
    name="limited", steps={"send_email": EmailApi()}, edges=[],
    initial_step="send_email", terminal_steps={"send_email"},
)

rated = WorkflowDefinition(
    name="rated", steps={"send_sms": Sms()}, edges=[],
    initial_step="send_sms", terminal_steps={"send_sms"},
)


class TakesAB(BaseMachineStep):
    name = "ab"
    limit = ("a", "b")

    async def execute(self, context: WorkflowContext) -> Any:
        await asyncio.sleep(0.001)


class TakesBA(BaseMachineStep):
    name = "ba"
    limit = ("b", "a")

    async def execute(self, context: WorkflowContext) -> Any:
        await asyncio.sleep(0.001)


class TakesB(BaseMachineStep):
    name = "b_only"
    limit = "b"

    async def execute(self, context: WorkflowContext) -> Any:
        await asyncio.sleep(0.001)


two_limits = WorkflowDefinition(
    name="two_limits",
    steps={"all": ParallelGroup(TakesAB(), TakesBA(), TakesB(), max_concurrent=2)},
    edges=[], initial_step="all", terminal_steps={"all"},
)

not_a_workflow = 42

broken = WorkflowDefinition(
    name="broken", steps={"double": Double()}, edges=[Edge("double", "nowhere")],
    initial_step="double", terminal_steps=set(),
)


class PauseAt(BaseMachineStep):
    """Instance ``SHARDFLOW_PAUSE_AT`` tells the test (through a FIFO) that the run has got
    that far, then waits to be killed or interrupted; on a re-run it goes straight through."""
    store_result = True  # its return value is read from the output

    name = "double"

    async def execute(self, context: WorkflowContext) -> Any:
        if context.get("id") == int(os.environ.get("SHARDFLOW_PAUSE_AT", "-1")) and _once("pause"):
            with open(_dir() / "pause.fifo", "w") as fifo:  # noqa: ASYNC230 - blocks on purpose
                fifo.write(str(os.getpid()))
            await asyncio.sleep(3600)
        await asyncio.sleep(0.001)
        return {"value": context.get("value", 0) * 2}


pausable = _two_step("pausable", PauseAt())
