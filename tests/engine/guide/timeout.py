"""Guide, "Timeout Handling"."""

import asyncio

from shardflow import BaseMachineStep


class TimedFetch(BaseMachineStep):
    name = "timed_fetch"
    timeout_seconds = 30

    async def execute(self, context):
        try:
            data = await asyncio.wait_for(
                self.fetch_data(),
                timeout=self.timeout_seconds
            )
            context.set("data", data)
        except asyncio.TimeoutError:  # noqa: UP041 (the guide's spelling)
            context.set("timed_out", True)
            context.set("data", None)

    async def fetch_data(self):
        # Actual fetch logic
        ...
