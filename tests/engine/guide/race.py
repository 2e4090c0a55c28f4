"""Guide, "Race Pattern"."""

from engine.guide.fakes import fast_api, reliable_api
from shardflow import BaseMachineStep, RaceGroup


class FastSource(BaseMachineStep):
    name = "fast_source"

    async def execute(self, context):
        # Usually responds quickly
        data = await fast_api.fetch()
        context.set("data", data)
        context.set("source", "fast")


class ReliableSource(BaseMachineStep):
    name = "reliable_source"

    async def execute(self, context):
        # Slower but more reliable
        data = await reliable_api.fetch()
        context.set("data", data)
        context.set("source", "reliable")


# First to complete wins
race_group = RaceGroup(
    FastSource(),
    ReliableSource(),
)
