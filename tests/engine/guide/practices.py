"""Guide, "Best Practices": independent steps, handling every failure mode, limiting
parallelism (a user-written ``ThrottledGroup`` calling ``engine.execute_step``)."""

import asyncio

from engine.guide.chord import FetchFromAPI1, FetchFromAPI2, FetchFromAPI3
from engine.guide.fakes import FetchInitialData, ProcessFetchedData
from shardflow import BaseMachineStep, ParallelGroup

# Good - independent steps
parallel = ParallelGroup(
    FetchFromAPI1(),  # No dependency on other fetches
    FetchFromAPI2(),
    FetchFromAPI3(),
)

good_parallel = parallel

# Bad - steps depend on each other
parallel = ParallelGroup(
    FetchInitialData(),
    ProcessFetchedData(),  # Depends on FetchInitialData!
)

bad_parallel = parallel


class RobustCallback(BaseMachineStep):
    name = "robust_callback"

    async def execute(self, context):
        results = {}
        errors = {}

        for step in ["step1", "step2", "step3"]:
            if context.get(f"{step}_success"):
                results[step] = context.get(f"{step}_data")
            else:
                errors[step] = context.get(f"{step}_error", "Unknown error")

        context.set("results", results)
        context.set("errors", errors)
        context.set("partial_success", len(results) > 0)


class ThrottledGroup:
    """Limit concurrent executions."""

    def __init__(self, *steps, max_concurrent: int = 5):
        self.steps = steps
        self.semaphore = asyncio.Semaphore(max_concurrent)

    async def execute(self, context, engine):
        async def run_with_limit(step):
            async with self.semaphore:
                return await engine.execute_step(step, context)

        await asyncio.gather(*[run_with_limit(s) for s in self.steps])
