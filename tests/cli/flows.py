"""Workflows of the CLI tests (a file target: ``tests/cli/flows.py:NAME``)."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from shardflow import BaseMachineStep, Edge, WorkflowContext, WorkflowDefinition


class Noisy(BaseMachineStep):
    """Writes to the worker's stderr and stdout: both must reach the coordinator's logging."""

    name = "noisy"

    async def execute(self, context: WorkflowContext) -> Any:
        print(f"stdout of instance {context.get('id')}")
        sys.stderr.write(f"stderr of instance {context.get('id')}\n")
        return None


class Throttled(BaseMachineStep):
    """Does nothing behind a limit and a rate limit: its time is all waiting."""

    name = "throttled"
    limit = "db"
    rate_limit = "api"

    async def execute(self, context: WorkflowContext) -> Any:
        return None


class Check(BaseMachineStep):
    name = "check"

    async def execute(self, context: WorkflowContext) -> Any:
        if int(context.get("id")) % 2:
            raise ValueError("odd")
        if int(context.get("id")) % 3 == 0:
            raise KeyError("third")
        return None


class Retried(BaseMachineStep):
    """Fails its first two attempts of each instance (attempts run on forks, so it counts in
    a module global, per worker process), then succeeds."""

    name = "retried"
    retries = 2
    retry_delay_seconds = 0.0
    seen: dict[Any, int] = {}

    async def execute(self, context: WorkflowContext) -> Any:
        key = context.get("id")
        self.seen[key] = self.seen.get(key, 0) + 1
        if self.seen[key] <= 2:
            raise ConnectionError("not yet")
        return None


def _flow(name: str, *steps: BaseMachineStep) -> WorkflowDefinition:
    names = [s.name for s in steps]
    return WorkflowDefinition(name=name, version="1.0.0", steps=dict(zip(names, steps, strict=True)),
                              edges=[Edge(a, b) for a, b in itertools.pairwise(names)],
                              initial_step=names[0], terminal_steps={names[-1]})


noisy = _flow("noisy", Noisy())
throttled = _flow("throttled", Throttled())
failing = _flow("failing", Retried(), Check())


class StartsADaemon(BaseMachineStep):
    """Starts a process that outlives the worker and inherits its stdout/stderr; its pid goes
    to ``$SHARDFLOW_TEST_DIR/daemon.pid`` so the test can end it."""

    name = "starts_a_daemon"

    async def execute(self, context: WorkflowContext) -> Any:
        daemon = await asyncio.to_thread(subprocess.Popen, [sys.executable, "-c", "import time; time.sleep(60)"])
        (Path(os.environ["SHARDFLOW_TEST_DIR"]) / "daemon.pid").write_text(str(daemon.pid))
        return None


daemon = _flow("daemon", StartsADaemon())


class Slow(BaseMachineStep):
    name = "slow"

    async def execute(self, context: WorkflowContext) -> Any:
        await asyncio.sleep(0.05)
        return None


slow = _flow("slow", Slow())
