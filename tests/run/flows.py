"""Workflows for the run tests, imported by file path in real worker processes.

Side effects are appended to ``effects.log`` in ``SHARDFLOW_TEST_DIR`` (one line per
execution of the step), so a test can prove that no instance ran twice.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from shardflow import BaseMachineStep, Edge, WorkflowContext, WorkflowDefinition


def _dir() -> Path:
    return Path(os.environ["SHARDFLOW_TEST_DIR"])


def _effect(instance_id: Any) -> None:
    fd = os.open(_dir() / "effects.log", os.O_CREAT | os.O_APPEND | os.O_WRONLY)
    try:
        os.write(fd, b"%s\n" % str(instance_id).encode())
    finally:
        os.close(fd)


def _hold_once(tag: str) -> None:
    """Tell the test (FIFO ``<tag>.fifo``) that the run got here, then wait until the test
    writes to ``<tag>-go.fifo``: an event both ways, no timer. Once per tag and test."""
    try:
        fd = os.open(_dir() / f"{tag}.marker", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.close(fd)
    with open(_dir() / f"{tag}.fifo", "w") as fifo:
        fifo.write(str(os.getpid()))
    with open(_dir() / f"{tag}-go.fifo") as go:
        go.read()


class Effect(BaseMachineStep):
    """Records that it ran; instance ``SHARDFLOW_HOLD_AT`` holds the run (see _hold_once,
    tag ``SHARDFLOW_HOLD_TAG``)."""
    store_result = True  # its return value is read from the output

    name = "effect"

    async def execute(self, context: WorkflowContext) -> Any:
        _effect(context.get("id"))
        if context.get("id") == int(os.environ.get("SHARDFLOW_HOLD_AT", "-1")):
            _hold_once(os.environ.get("SHARDFLOW_HOLD_TAG", "held"))
        return {"value": context.get("value", 0) * 2}


class FailOdd(BaseMachineStep):
    """Fails odd values until ``fixed.marker`` exists (what ``--retry-failed`` is for)."""
    store_result = True  # its return value is read from the output

    name = "fail_odd"

    async def execute(self, context: WorkflowContext) -> Any:
        _effect(context.get("id"))
        if context.get("value", 0) % 2 and not (_dir() / "fixed.marker").exists():
            raise RuntimeError("odd value, not fixed yet")
        return {"ok": True}


class Done(BaseMachineStep):
    name = "done"

    async def execute(self, context: WorkflowContext) -> Any:
        return None


def _two_step(name: str, first: BaseMachineStep) -> WorkflowDefinition:
    return WorkflowDefinition(name=name, version="1.0.0", steps={"first": first, "done": Done()},
                              edges=[Edge("first", "done")], initial_step="first",
                              terminal_steps={"done"})


effect = _two_step("effect", Effect())
fail_odd = _two_step("fail_odd", FailOdd())
