"""Small fakes for what the guide's code uses but does not define.

Module-level, as in the guide; ``reset()`` gives every test fresh state (and fresh events, which
bind to the running loop). Services record what happened in ``journal`` and can be told to meet
at a :class:`Rendezvous`, which proves that their callers ran at the same time.
"""

from __future__ import annotations

import asyncio
from typing import Any

from engine.helpers import Rendezvous
from shardflow import BaseMachineStep, WorkflowContext

journal: list[str] = []
"""What the fakes did, in order."""


class FakeService:
    """An email/Slack/SMS service or a data API. ``meet`` (a Rendezvous) makes each call wait
    for its siblings; ``payload`` is what ``fetch`` returns."""

    def __init__(self, name: str, payload: Any = None) -> None:
        self.name = name
        self.payload = payload if payload is not None else {"from": name}
        self.reset()

    def reset(self) -> None:
        self.calls = 0
        self.meet: Rendezvous | None = None

    async def _call(self) -> None:
        self.calls += 1
        journal.append(f"{self.name} started")
        if self.meet is not None:
            await self.meet.arrive(self.name)
        journal.append(f"{self.name} done")

    async def send(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        await self._call()
        return {"ok": True}

    async def fetch(self) -> Any:
        await self._call()
        return self.payload


class FlakyApi:
    """``external_api``: ``fetch()`` fails on the call numbers in ``failing`` (1-based)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self, failing: set[int] | None = None) -> None:
        self.calls = 0
        self.failing = failing or set()

    async def fetch(self) -> Any:
        self.calls += 1
        number = self.calls
        await asyncio.sleep(0)
        if number in self.failing:
            raise ConnectionError(f"call {number} refused")
        return {"call": number}


class RaceApis:
    """``fast_api`` and ``reliable_api``: the fast one answers once the reliable one has started
    (so the race really has a running loser); the reliable one never answers by itself and
    records its cancellation in ``finally``."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.reliable_started = asyncio.Event()
        self.reliable_never = asyncio.Event()
        self.reliable_cancelled = False
        self.reliable_finally_ran = False

    async def fast_fetch(self) -> Any:
        await self.reliable_started.wait()
        return {"value": "fast"}

    async def reliable_fetch(self) -> Any:
        self.reliable_started.set()
        try:
            await self.reliable_never.wait()
        except asyncio.CancelledError:
            self.reliable_cancelled = True
            raise
        finally:
            self.reliable_finally_ran = True
        return {"value": "reliable"}


class _Bound:
    def __init__(self, fetch: Any) -> None:
        self.fetch = fetch


email_service = FakeService("email")
slack_service = FakeService("slack")
sms_service = FakeService("sms")
api1 = FakeService("api1", {"rows": [1]})
api2 = FakeService("api2", {"rows": [2, 2]})
api3 = FakeService("api3", {"rows": [3, 3, 3]})
external_api = FlakyApi()
race_apis = RaceApis()
fast_api = _Bound(lambda: race_apis.fast_fetch())
reliable_api = _Bound(lambda: race_apis.reliable_fetch())
SERVICES = (email_service, slack_service, sms_service, api1, api2, api3)


class ProcessStep(BaseMachineStep):
    name = "process"
    runs = 0

    async def execute(self, context: WorkflowContext) -> None:
        type(self).runs += 1
        journal.append("process")
        context.set("processed", True)


class CompleteStep(BaseMachineStep):
    """Records each run with what it saw of the three branches."""

    name = "complete"
    seen: list[dict[str, Any]] = []

    async def execute(self, context: WorkflowContext) -> None:
        journal.append("complete")
        self.seen.append({k: context.get(k) for k in ("email_sent", "slack_sent", "sms_sent")})
        context.set("completed", True)


class FetchInitialData(BaseMachineStep):
    name = "fetch_initial"

    async def execute(self, context: WorkflowContext) -> None:
        context.set("initial_data", [1, 2, 3])


class ProcessFetchedData(BaseMachineStep):
    name = "process_fetched"

    async def execute(self, context: WorkflowContext) -> None:
        context.set("saw_initial_data", context.get("initial_data"))


def reset() -> None:
    journal.clear()
    for service in SERVICES:
        service.reset()
    external_api.reset()
    race_apis.reset()
    ProcessStep.runs = 0
    CompleteStep.seen = []
