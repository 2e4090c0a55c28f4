"""The worker's loop watchdog: finds the step that blocks the event loop and ends the worker.

A step that blocks the loop (a CPU loop, ``time.sleep``) cannot be cancelled. A thread checks
that the loop keeps ticking; once it has been stuck for ``hard_timeout`` seconds, the thread
asks ``blame`` which job is running (the shard runner reads the record ``run_step`` keeps
per task, for the loop's current task), writes it to a file the coordinator reads, and exits
the process. The coordinator replaces the worker, fails or retries that instance, and
re-runs the others without counting it against them.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson

EXIT_CODE = 70


class LoopWatchdog:
    def __init__(self, loop: asyncio.AbstractEventLoop, hard_timeout: float, report_path: str,
                 blame: Callable[[], dict[str, Any] | None]) -> None:
        self.loop = loop
        self.hard_timeout = hard_timeout
        self.report_path = report_path
        self.interval = min(0.1, hard_timeout / 5)
        self.last_tick = time.monotonic()
        self._blame = blame
        self._stop = threading.Event()

    def start(self) -> None:
        self._tick()
        threading.Thread(target=self._watch, name="shardflow-watchdog", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _tick(self) -> None:
        self.last_tick = time.monotonic()
        if not self._stop.is_set():
            self.loop.call_later(self.interval, self._tick)

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            if time.monotonic() - self.last_tick > self.hard_timeout:
                self._report()
                os._exit(EXIT_CODE)

    def _report(self) -> None:
        found = self._blame()
        if found is not None:
            with open(self.report_path, "wb") as fh:
                fh.write(orjson.dumps(found))
