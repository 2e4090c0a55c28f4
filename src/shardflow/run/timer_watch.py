"""A batch run continues its parked timers when they are due (docs/SEMANTICS.md, "Timers in
batch runs").

A long ``TimerStep`` parks its instance with a task due when the timer fires (its ``due_at``).
:class:`TimerWatch` runs beside a run's pool (the coordinator's ``watch``):

* while the run works (input to read, instances in flight), it looks at the task store's next
  due timer every :data:`TICK` seconds; a timer that is due is fired (its task completed by
  ``"<timer>"``, a conditional UPDATE: exactly once, whichever process tries) and its instance,
  once all its tasks are completed, is continued in this run as ``shardflow resume`` would;
* once the run has nothing else to do, it waits for the next timer if that one is due within
  ``bound`` seconds (``--wait-timers``), and else lets the run end with the rest parked
  (``shardflow resume`` continues them when they are due).

The coordinator's feed is held open while the watch may still add work. An interrupt stops the
feed (and so the watch's hold) as it always did; a crash loses nothing: a fired timer's task is
completed in the store before its instance is continued, so ``resume`` finds the instance
ready if this run could not finish it, and the journal says if it did.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

from shardflow.batch.coordinator import Coordinator
from shardflow.engine.passive import TIMER_USER, due_timers
from shardflow.errors import TaskAlreadyCompletedError
from shardflow.model.plan import Plan
from shardflow.model.tasks import TIMER, HumanTask
from shardflow.run.journal_ledger import JournalLedger, resume_job
from shardflow.store.tasks import SQLiteTaskStore, WaitingInstance

TICK = 0.25
"""Seconds between two looks at the next due timer while the run works: how late a timer
may fire then (the store's query is one index lookup)."""

DEFAULT_WAIT_SECONDS = 300.0
"""``--wait-timers``' default: a run that has nothing else to do waits up to five minutes
for its next timer. Timers up to ``park_after_seconds`` (a minute) sleep in memory; those of
the next few minutes are worth an idle pool, not a cron entry; longer ones park."""


def next_move(now: float, due: float | None, working: bool, bound: float) -> float | None:
    """What the watch does at wall time ``now``, the next timer being due at ``due`` (None:
    no parked timer): 0 fire the due timers now; a positive number, wait that long and look
    again; None, stop (the run ends once the rest is done)."""
    if due is not None and due <= now:
        return 0.0
    if working:
        return TICK if due is None else min(TICK, due - now)
    if due is not None and due - now <= bound:
        return due - now
    return None


def due_text(ts: float) -> str:
    """A timer's due time (wall time) as the run's messages say it: local, to the second."""
    return datetime.fromtimestamp(ts).isoformat(sep=" ", timespec="seconds")


def fire_due(store: SQLiteTaskStore, plan: Plan, at: float) -> list[HumanTask]:
    """Complete the tasks of the parked timers of ``plan`` due at wall time ``at``; the ones
    this call completed (one completed meanwhile by another process is left as it is)."""
    fired = []
    for task in due_timers(plan, store.list_tasks(kinds=[TIMER]), at):
        try:
            fired.append(store.complete_task(task.id, {}, TIMER_USER))
        except TaskAlreadyCompletedError:
            continue
    return fired


class TimerWatch:
    """Continues a run's parked timers in that run; ``await watch(coordinator)``."""

    def __init__(self, store: Callable[[], SQLiteTaskStore], plan: Plan, ledger: JournalLedger,
                 bound: float, *, started: list[WaitingInstance],
                 notify: Callable[[str], None],
                 now: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._store = store
        self._plan = plan
        self._ledger = ledger
        self.bound = bound
        self._notify = notify
        self._now = now
        self._sleep = sleep
        self.continued = 0
        """Instances this watch continued (their timers fired while the run was on)."""
        ledger.waited = set()
        self._touched = {w.seq for w in started}
        """Seqs continued in this session (the run's own ``ready`` ones included): their
        next ``waiting`` record must be journalled before they are continued again."""
        self._fired: dict[str, None] = {}
        """Instances whose timer fired, not continued yet (their record is not in yet)."""
        self._told_waiting = False

    async def __call__(self, run: Coordinator) -> None:
        while not run.stopping:
            if self._fired:
                working = run.working()
                self._continue(run)
                if not working:  # nothing is in flight: a record still missing never comes
                    self._fired.clear()  # (``resume`` continues those instances)
            now = self._now()
            due = self._store().next_due(TIMER)
            working = run.working()
            move = next_move(now, due, working, self.bound)
            if move is None:
                break
            if move > 0:
                if not working and not self._told_waiting:
                    self._tell_waiting(due)
                await self._sleep(move)
                continue
            fired = fire_due(self._store(), self._plan, now)
            self._fired.update((task.instance_id, None) for task in fired)
            if not fired:  # completed meanwhile elsewhere: the next look finds the next one
                await self._sleep(TICK)
        run.release_feed()

    def _continue(self, run: Coordinator) -> None:
        """Continue the instances whose timers fired, once all their tasks are completed
        and their ``waiting`` record is journalled."""
        store, ledger = self._store(), self._ledger
        assert ledger.waited is not None
        ready, here = [], set()
        for instance_id in list(self._fired):
            waiting = store.get_waiting(instance_id)
            if waiting is None or not all(t.completed for t in waiting.tasks):
                del self._fired[instance_id]  # finished, or it waits for people as well
                continue
            seq = waiting.seq
            if seq in ledger.waited or (seq in ledger.done and seq not in self._touched):
                ready.append(waiting)
                del self._fired[instance_id]
                if seq in ledger.waited:
                    here.add(seq)
                    ledger.waited.discard(seq)
                self._touched.add(seq)
        if ready:
            ledger.add_resumed(ready)
            run.continue_waiting([resume_job(w) for w in ready], here)
            self.continued += len(ready)

    def _tell_waiting(self, due: float | None) -> None:
        assert due is not None
        self._told_waiting = True
        self._notify(f"waiting for parked timers (the next due at {due_text(due)}, within "
                     f"--wait-timers {self.bound:g} s); Ctrl-C stops, and 'shardflow resume' "
                     "continues them")
