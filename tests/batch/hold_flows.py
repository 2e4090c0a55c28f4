"""A review, then shipping: with ``SHARDFLOW_HOLD`` set, shipping instance 0 marks ``held``
in the test directory and waits until the run is stopped, so a test can stop a resume while
it is known to be mid-way."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from shardflow import BaseHumanStep, BaseMachineStep, Edge, WorkflowContext, WorkflowDefinition


class Review(BaseHumanStep):
    name = "review"
    form_schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}}


class Ship(BaseMachineStep):
    name = "ship"

    async def execute(self, context: WorkflowContext) -> Any:
        if context.get("id") == 0 and os.environ.get("SHARDFLOW_HOLD"):
            (Path(os.environ["SHARDFLOW_TEST_DIR"]) / "held").touch()
            await asyncio.Event().wait()  # until the resume is stopped
        context.set("shipped", True)


workflow = WorkflowDefinition(
    name="review_then_ship", steps={"review": Review(), "ship": Ship()},
    edges=[Edge("review", "ship")], initial_step="review", terminal_steps={"ship"})
