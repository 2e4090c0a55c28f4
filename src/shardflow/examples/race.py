"""The guide's race: a fast and a reliable source; the first to answer wins."""

from __future__ import annotations

from typing import Any

from shardflow import BaseMachineStep, Edge, RaceGroup, WorkflowContext, WorkflowDefinition
from shardflow.examples.services import FakeService

fast_api = FakeService("fast", payload={"value": 1})
reliable_api = FakeService("reliable", latency=0.05, payload={"value": 1})


class FastSource(BaseMachineStep):
    name = "fast_source"

    async def execute(self, context: WorkflowContext) -> Any:
        data = await fast_api.fetch()
        context.set("data", data)
        context.set("source", "fast")


class ReliableSource(BaseMachineStep):
    name = "reliable_source"

    async def execute(self, context: WorkflowContext) -> Any:
        data = await reliable_api.fetch()
        context.set("data", data)
        context.set("source", "reliable")


class Report(BaseMachineStep):
    name = "report"

    async def execute(self, context: WorkflowContext) -> Any:
        context.set("report", {"source": context.get("source")})


workflow = WorkflowDefinition(
    name="race_sources",
    steps={"fetch": RaceGroup(FastSource(), ReliableSource()), "report": Report()},
    edges=[Edge("fetch", "report")],
    initial_step="fetch",
    terminal_steps={"report"},
)
