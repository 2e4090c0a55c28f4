"""Guide, "Handling Partial Failures"."""

from engine.guide.fakes import external_api
from shardflow import BaseMachineStep


class ResilientFetch(BaseMachineStep):
    name = "resilient_fetch"

    async def execute(self, context):
        try:
            data = await external_api.fetch()
            context.set(f"{self.name}_data", data)
            context.set(f"{self.name}_success", True)
        except Exception as e:
            context.set(f"{self.name}_error", str(e))
            context.set(f"{self.name}_success", False)


class HandlePartialResults(BaseMachineStep):
    name = "handle_results"

    async def execute(self, context):
        successful = []
        failed = []

        for source in ["api1", "api2", "api3"]:
            if context.get(f"fetch_{source}_success"):
                successful.append(source)
            else:
                failed.append(source)

        context.set("successful_fetches", successful)
        context.set("failed_fetches", failed)

        # Proceed if at least one succeeded
        if not successful:
            raise ValueError("All data fetches failed")
