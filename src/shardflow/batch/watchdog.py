"""The worker's loop watchdog: finds the step that blocks the event loop and ends the worker.

A step that blocks the loop (a CPU loop, ``time.sleep``) cannot be cancelled. A thread checks
that the loop keeps ticking; once it has been stuck for ``hard_timeout`` seconds, the thread
reads the main thread's stack to find the instance and step running, writes them to a file
the coordinator reads, and exits the process. The coordinator replaces the worker, fails or
retries that instance, and re-runs the others without counting it against them.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from types import CodeType, FrameType
from typing import Any

import orjson

EXIT_CODE = 70


class LoopWatchdog:
    def __init__(self, loop: asyncio.AbstractEventLoop, hard_timeout: float, report_path: str,
                 run_step_code: CodeType, run_one_code: CodeType) -> None:
        self.loop = loop
        self.hard_timeout = hard_timeout
        self.report_path = report_path
        self.interval = min(0.1, hard_timeout / 5)
        self.last_tick = time.monotonic()
        self._codes = (run_step_code, run_one_code)
        self._main = threading.get_ident()
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
        frame: FrameType | None = sys._current_frames().get(self._main)
        found: dict[str, Any] = {}
        run_step_code, run_one_code = self._codes
        while frame is not None:
            if frame.f_code is run_step_code and "step" not in found:
                local = frame.f_locals
                step = local.get("step")
                found["step"] = local.get("path")
                found["retries"] = int(getattr(step, "retries", 0))
            elif frame.f_code is run_one_code:
                found["seq"] = frame.f_locals.get("seq")
                break
            frame = frame.f_back
        if "seq" in found:
            with open(self.report_path, "wb") as fh:
                fh.write(orjson.dumps(found))
