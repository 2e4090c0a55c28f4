"""Workflows the consumer tests run. Steps that must be watched from the test report to
Redis (``SHARDFLOW_TEST_REDIS``): a started message on a list the test blocks on."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import redis

from shardflow import BaseMachineStep, Edge, WorkflowContext, WorkflowDefinition

_client: redis.Redis | None = None


def report() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ["SHARDFLOW_TEST_REDIS"])
    return _client


class Work(BaseMachineStep):
    """Fails when the input says ``fail``; sleeps ``sleep`` seconds after reporting its start
    when the input says so."""

    name = "work"

    async def execute(self, context: WorkflowContext) -> Any:
        if context.get("fail"):
            raise ValueError(f"asked to fail: {context.get('id')}")
        pause = context.get("sleep")
        if pause:
            report().rpush("started", str(context.get("id")))
            await asyncio.sleep(pause)
        context.set("done", True)


class Limited(BaseMachineStep):
    """Holds the ``api`` limit; counts how many run at once, across every process."""

    name = "limited"
    limit = "api"

    async def execute(self, context: WorkflowContext) -> Any:
        client = report()
        now = client.incr("running")
        client.eval("if tonumber(redis.call('GET', KEYS[1]) or '0') < tonumber(ARGV[1]) then "
                    "redis.call('SET', KEYS[1], ARGV[1]) end", 1, "peak", now)
        await asyncio.sleep(0.02)
        client.decr("running")


class Finish(BaseMachineStep):
    name = "finish"

    async def execute(self, context: WorkflowContext) -> Any:
        context.set("finished", True)


work = WorkflowDefinition(name="work", steps={"work": Work(), "finish": Finish()},
                          edges=[Edge("work", "finish")], initial_step="work",
                          terminal_steps={"finish"})
limited = WorkflowDefinition(name="limited", steps={"limited": Limited(), "finish": Finish()},
                             edges=[Edge("limited", "finish")], initial_step="limited",
                             terminal_steps={"finish"})


class WorkUnlessSkipped(Work):
    """``Work``, without its sleep once the test has set ``skip-sleep`` (a redelivery after
    the consumer that started it was killed)."""

    name = "work"

    async def execute(self, context: WorkflowContext) -> Any:
        if report().get("skip-sleep"):
            context.set("sleep", None)
        return await super().execute(context)


work_second_time_quick = WorkflowDefinition(
    name="work", steps={"work": WorkUnlessSkipped(), "finish": Finish()},
    edges=[Edge("work", "finish")], initial_step="work", terminal_steps={"finish"})


class Held(Work):
    """``Work`` holding the ``api`` limit while it sleeps."""

    name = "work"
    limit = "api"


held = WorkflowDefinition(name="held", steps={"work": Held(), "finish": Finish()},
                          edges=[Edge("work", "finish")], initial_step="work",
                          terminal_steps={"finish"})
