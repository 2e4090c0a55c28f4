"""The guide's chord: fetch from three APIs at once, then aggregate in a callback."""

from __future__ import annotations

from typing import Any

from shardflow import BaseMachineStep, Edge, ParallelGroup, WorkflowContext, WorkflowDefinition
from shardflow.examples.services import FakeService

api1 = FakeService("api1", payload={"rows": 1})
api2 = FakeService("api2", payload={"rows": 2})
api3 = FakeService("api3", payload={"rows": 3})


class FetchFromAPI1(BaseMachineStep):
    name = "fetch_api1"

    async def execute(self, context: WorkflowContext) -> Any:
        context.set("api1_data", await api1.fetch())


class FetchFromAPI2(BaseMachineStep):
    name = "fetch_api2"

    async def execute(self, context: WorkflowContext) -> Any:
        context.set("api2_data", await api2.fetch())


class FetchFromAPI3(BaseMachineStep):
    name = "fetch_api3"

    async def execute(self, context: WorkflowContext) -> Any:
        context.set("api3_data", await api3.fetch())


class AggregateResults(BaseMachineStep):
    name = "aggregate"

    async def execute(self, context: WorkflowContext) -> Any:
        combined = {
            "api1": context.get("api1_data"),
            "api2": context.get("api2_data"),
            "api3": context.get("api3_data"),
        }
        context.set("combined_data", combined)


class Start(BaseMachineStep):
    name = "start"

    async def execute(self, context: WorkflowContext) -> Any:
        context.set("started", True)


workflow = WorkflowDefinition(
    name="chord_fetch",
    steps={
        "start": Start(),
        "fetch": ParallelGroup(
            FetchFromAPI1(), FetchFromAPI2(), FetchFromAPI3(), callback=AggregateResults()
        ),
    },
    edges=[Edge("start", "fetch")],
    initial_step="start",
    terminal_steps={"fetch"},
)
