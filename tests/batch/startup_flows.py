"""A workflow module whose import misbehaves in worker processes only (the coordinator,
which imports it too, is unaffected): ``SHARDFLOW_STARTUP`` picks how.

* ``signal-then-block``: the first ``SHARDFLOW_STARTUP_KILLS`` workers to import it each
  write ``<pid>\\n`` to ``start.fifo`` in the test directory and block until killed;
* ``hang``: every worker writes its pid to ``hung.pid`` and blocks on import forever;
* ``crash``: every worker exits with code 3 on import;
* ``sigkill``: every worker SIGKILLs itself on import;
* ``only-once``: the first worker loads it, every later one exits with code 3 on import
  (``killer`` then takes that first worker down, and no replacement can start).
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from pathlib import Path
from typing import Any

from flows_core import counted

from shardflow import BaseMachineStep, WorkflowContext, WorkflowDefinition

IN_WORKER = "SHARDFLOW_WORKER_SPEC" in os.environ


def _signal_then_block(directory: Path, kills: int) -> None:
    for i in range(kills):
        try:
            fd = os.open(directory / f"start-{i}.marker", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            continue
        os.close(fd)
        with open(directory / "start.fifo", "w") as fifo:
            fifo.write(f"{os.getpid()}\n")
        threading.Event().wait()  # until the test kills this worker


if IN_WORKER:
    mode = os.environ.get("SHARDFLOW_STARTUP", "")
    if mode == "signal-then-block":
        _signal_then_block(Path(os.environ["SHARDFLOW_TEST_DIR"]),
                           int(os.environ.get("SHARDFLOW_STARTUP_KILLS", "3")))
    elif mode == "hang":
        (Path(os.environ["SHARDFLOW_TEST_DIR"]) / "hung.pid").write_text(str(os.getpid()))
        threading.Event().wait()
    elif mode == "crash":
        os._exit(3)
    elif mode == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif mode == "only-once":
        try:
            os.close(os.open(Path(os.environ["SHARDFLOW_TEST_DIR"]) / "loaded.marker",
                             os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            os._exit(3)

workflow = counted


class KillOwnWorker(BaseMachineStep):
    """Instance 5 SIGKILLs the worker running it."""

    name = "kill"

    async def execute(self, context: WorkflowContext) -> Any:
        await asyncio.sleep(0)
        if context.get("id") == 5:
            os.kill(os.getpid(), signal.SIGKILL)


killer = WorkflowDefinition(name="killer", steps={"kill": KillOwnWorker()}, edges=[],
                            initial_step="kill", terminal_steps={"kill"})
