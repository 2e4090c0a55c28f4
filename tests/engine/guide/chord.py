"""Guide, "Chord Pattern: Parallel with Callback"."""

from engine.guide.fakes import api1, api2, api3
from shardflow import BaseMachineStep, ParallelGroup


class FetchFromAPI1(BaseMachineStep):
    name = "fetch_api1"

    async def execute(self, context):
        data = await api1.fetch()
        context.set("api1_data", data)


class FetchFromAPI2(BaseMachineStep):
    name = "fetch_api2"

    async def execute(self, context):
        data = await api2.fetch()
        context.set("api2_data", data)


class FetchFromAPI3(BaseMachineStep):
    name = "fetch_api3"

    async def execute(self, context):
        data = await api3.fetch()
        context.set("api3_data", data)


class AggregateResults(BaseMachineStep):
    name = "aggregate"

    async def execute(self, context):
        # Combine all fetched data
        combined = {
            "api1": context.get("api1_data"),
            "api2": context.get("api2_data"),
            "api3": context.get("api3_data"),
        }
        context.set("combined_data", combined)


# Create chord: parallel steps + callback
data_fetch_group = ParallelGroup(
    FetchFromAPI1(),
    FetchFromAPI2(),
    FetchFromAPI3(),
    callback=AggregateResults(),  # Runs after all complete
)
