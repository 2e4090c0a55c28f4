"""With ``--auto-resume``, the inbox continues parked timers when they are due.

A served run whose instances wait on long timers would otherwise sit until someone presses
resume. :class:`TimerAlarm` looks at each served run's next due timer (one indexed query of
its ``tasks.db``) every :data:`LOOK_SECONDS`; when one is due, it requests the run's resume
from the :class:`~shardflow.web.resumer.Resumer`: the same ``shardflow resume`` the button
starts, which fires the due timers (the timer watch's rule, written once in
``run/timer_watch.py``), continues their instances and leaves later timers parked. The alarm
itself fires nothing.

It requests a resume once per due time: while that resume runs, or after it if the same timer
is still due (the resume failed, say because ``shardflow run`` still holds the run's lock), it
asks again only after :data:`RETRY_SECONDS`, so a failing resume is not restarted every second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable

from shardflow.errors import ShardflowError
from shardflow.model.tasks import TIMER
from shardflow.web.resumer import Resumer, ResumeStatus
from shardflow.web.runs import RunTable, ServedRun

LOOK_SECONDS = 1.0
"""Seconds between two looks at the runs' next due timers: how late the inbox may fire one."""

RETRY_SECONDS = 30.0
"""Seconds before the alarm asks again to resume a run whose due timer is still parked."""

log = logging.getLogger("shardflow.web")


def _next_due(run: ServedRun) -> float | None:
    with run.store() as store:
        return store.next_due(TIMER)


class TimerAlarm:
    """Requests a served run's resume when one of its parked timers is due; ``start()`` on
    the server's loop, ``aclose()`` when it stops."""

    def __init__(self, runs: RunTable, resumer: Resumer, *,
                 now: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._runs = runs
        self._resumer = resumer
        self._now = now
        self._sleep = sleep
        self._asked: dict[str, tuple[float, float]] = {}
        """Run name -> (the due time a resume was requested for, when it was requested)."""
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._watch())

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _watch(self) -> None:
        while True:
            for run in self._runs:
                try:
                    due = await asyncio.to_thread(_next_due, run)
                except (ShardflowError, OSError, sqlite3.Error) as exc:  # the page shows it too
                    log.warning("cannot read the timers of run %s: %s", run.name, exc)
                    continue
                if due is not None and self._should_ask(run.name, due):
                    await self._resumer.request(run.name, run.path)
            await self._sleep(LOOK_SECONDS)

    def _should_ask(self, run: str, due: float) -> bool:
        """True if ``due`` has come and no resume asked for it runs or ran just now."""
        now = self._now()
        if due > now or self._resumer.state(run).status is ResumeStatus.RUNNING:
            return False
        asked = self._asked.get(run)
        if asked is not None and asked[0] == due and now - asked[1] < RETRY_SECONDS:
            return False
        self._asked[run] = (due, now)
        return True
