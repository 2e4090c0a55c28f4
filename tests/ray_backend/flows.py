"""Workflows for the Ray backend's tests, imported by file path on the shard actors.

The actors do not inherit the test's environment (they are children of the module's Ray),
so whatever a step needs to know (where to log, how long to sleep, whom to hold) travels in
the instance's input."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from shardflow import BaseMachineStep, Edge, TimerStep, WorkflowContext, WorkflowDefinition


def _append(path: str, text: str) -> None:
    fd = os.open(path, os.O_CREAT | os.O_APPEND | os.O_WRONLY)
    try:
        os.write(fd, text.encode() + b"\n")
    finally:
        os.close(fd)


def _first_time(directory: Path) -> bool:
    """Once per test: tell it (FIFO ``held.fifo``) which process runs the held instance."""
    try:
        os.close(os.open(directory / "held.marker", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    with open(directory / "held.fifo", "w") as fifo:
        fifo.write(str(os.getpid()))
    return True


class Work(BaseMachineStep):
    """Sleeps ``sleep`` seconds; logs its id to ``effects`` (one line per execution) and, with
    ``spans``, ``id start end`` (monotonic ns) once it has slept; the instance ``hold`` tells
    the test it started (FIFO ``<dir>/held.fifo``, once) and then waits a long time without
    blocking the loop; the instance ``poison`` ends its actor's process every time."""
    store_result = True  # its return value is read from the output

    name = "work"

    async def execute(self, context: WorkflowContext) -> Any:
        if context.get("effects"):
            _append(context.get("effects"), str(context.get("id")))
        if context.get("id") == context.get("hold") and _first_time(Path(context.get("dir"))):
            await asyncio.sleep(120)
        if context.get("id") == context.get("poison"):
            os._exit(3)  # a crash of the worker, the job's doing
        began = time.monotonic_ns()
        await asyncio.sleep(context.get("sleep", 0.0))
        if context.get("spans"):
            _append(context.get("spans"), f"{context.get('id')} {began} {time.monotonic_ns()}")
        return {"doubled": context.get("id") * 2}


work = WorkflowDefinition(name="ray_work", steps={"work": Work()}, edges=[],
                          initial_step="work")


class ParkingTimer(TimerStep):
    """Parks even a short wait (``delay`` seconds, from the input): a long timer, made short."""

    park_after_seconds = -1.0


timed = WorkflowDefinition(
    name="ray_timed",
    steps={"wait": ParkingTimer("wait", duration=lambda c: timedelta(seconds=c.get("delay"))),
           "work": Work()},
    edges=[Edge("wait", "work")], initial_step="wait")


class Api(BaseMachineStep):
    """Holds the ``api`` limit for ``sleep`` seconds; logs ``+ t`` / ``- t`` (monotonic ns,
    one clock for every process of the machine) to ``log``. The instance ``hold`` keeps its
    slot (without logging) until its actor is killed, the first time."""
    store_result = True  # its return value is read from the output

    name = "api"
    limit = "api"

    async def execute(self, context: WorkflowContext) -> Any:
        if context.get("id") == context.get("hold") and _first_time(Path(context.get("dir"))):
            await asyncio.sleep(120)
        _append(context.get("log"), f"+ {time.monotonic_ns()}")
        await asyncio.sleep(context.get("sleep", 0.01))
        _append(context.get("log"), f"- {time.monotonic_ns()}")
        return {"called": True}


class After(BaseMachineStep):
    store_result = True  # its return value is read from the output
    name = "after"

    async def execute(self, context: WorkflowContext) -> Any:
        return {"after": True}


limited = WorkflowDefinition(name="ray_limited", steps={"api": Api(), "after": After()},
                             edges=[Edge("api", "after")], initial_step="api")


class BlockLoop(BaseMachineStep):
    """Instance ``block`` blocks its actor's event loop (no timeout can cancel that)."""
    store_result = True  # its return value is read from the output

    name = "block"

    async def execute(self, context: WorkflowContext) -> Any:
        if context.get("id") == context.get("block"):
            time.sleep(30)  # noqa: ASYNC251 - blocking the loop is the point
        return {"ok": True}


blocking = WorkflowDefinition(name="ray_blocking", steps={"block": BlockLoop()}, edges=[],
                              initial_step="block")


class Spread(BaseMachineStep):
    """Sleeps ``sleep`` seconds, logs each execution to ``effects``; on the node started with
    ``SHARDFLOW_VICTIM=1`` the first instance tells the test (FIFO ``<dir>/held.fifo``) and
    stays in flight, so the node dies with work on it."""
    store_result = True  # its return value is read from the output

    name = "spread"

    async def execute(self, context: WorkflowContext) -> Any:
        _append(context.get("effects"), str(context.get("id")))
        if os.environ.get("SHARDFLOW_VICTIM") == "1" and _first_time(Path(context.get("dir"))):
            await asyncio.sleep(120)
        await asyncio.sleep(context.get("sleep", 0.0))
        return {"pid": os.getpid()}


spread = WorkflowDefinition(name="ray_spread", steps={"spread": Spread()}, edges=[],
                            initial_step="spread")
