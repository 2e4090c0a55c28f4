"""The timer watch on an injected clock: it fires each due timer once, continues an instance
only once its ``waiting`` record is in, waits for a timer within its bound, and lets the run
end when the next one is further away. A real task store and ledger; the run is a stand-in."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batch.kind_flows import timed
from shardflow.batch.jobs import Job
from shardflow.model.tasks import HumanTask
from shardflow.run.journal_ledger import JournalLedger
from shardflow.run.timer_watch import TimerWatch
from shardflow.store.journal import FileJournal, SeqSet
from shardflow.store.tasks import SQLiteTaskStore, WaitingInstance


class FakeRun:
    """What the watch sees of a coordinator: nothing in flight, and what it was given."""

    def __init__(self) -> None:
        self.stopping = False
        self.continued: list[tuple[list[int], set[int]]] = []
        self.released = False

    def working(self) -> bool:
        return False

    def continue_waiting(self, jobs: list[Job], here: set[int]) -> None:
        self.continued.append(([job.seq for job in jobs], set(here)))

    def release_feed(self) -> None:
        self.released = True


class Clock:
    """Wall time that moves only when the watch sleeps."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _parked(store: SQLiteTaskStore, seq: int, due_at: float) -> None:
    key = str(seq)
    task = HumanTask(id=f"t{seq}", instance_id=key, node="wait", step="wait", title="wait",
                     form_schema=None, assignee=None, due_at=due_at, created_at=0.0, kind="timer")
    store.save_waiting([WaitingInstance(key, "timed", "1.0.0", seq, {"format": 1}, [task], seq)])


OPEN: list[Any] = []


@pytest.fixture(autouse=True)
def _close_files() -> Iterator[None]:
    yield
    while OPEN:
        OPEN.pop().close()


def _watch(tmp_path: Path, bound: float, done: list[int]) -> tuple[TimerWatch, Clock, Any]:
    store = SQLiteTaskStore(tmp_path / "tasks.db")
    _parked(store, 0, due_at=100.0)
    _parked(store, 1, due_at=500.0)
    seqs = SeqSet()
    for seq in done:
        seqs.add(seq)
    journal = FileJournal(tmp_path / "journal")
    OPEN.extend([store, journal])
    ledger = JournalLedger(journal, lambda: store, "timed", "1.0.0", done=seqs)
    clock = Clock(100.0)
    watch = TimerWatch(lambda: store, timed.plan, ledger, bound, started=[],
                       notify=lambda message: None, now=lambda: clock.now, sleep=clock.sleep)
    return watch, clock, store


def test_a_due_timer_fires_once_and_a_far_one_lets_the_run_end(tmp_path: Path) -> None:
    watch, clock, store = _watch(tmp_path, bound=300, done=[0, 1])
    run = FakeRun()
    asyncio.run(watch(run))  # type: ignore[arg-type]
    assert run.continued == [([0], set())]  # from an earlier session: counted there
    assert clock.sleeps == [] and run.released
    assert store.get_task("t0").completed_by == "<timer>"
    assert store.get_task("t1").completed_at is None and store.next_due() == 500.0


def test_a_timer_within_the_bound_is_waited_for(tmp_path: Path) -> None:
    watch, clock, store = _watch(tmp_path, bound=400, done=[0, 1])
    run = FakeRun()
    asyncio.run(watch(run))  # type: ignore[arg-type]
    assert run.continued == [([0], set()), ([1], set())] and watch.continued == 2
    assert clock.sleeps == [400.0]
    assert store.next_due() is None


def test_an_instance_is_continued_only_once_its_waiting_record_is_in(tmp_path: Path) -> None:
    watch, _, store = _watch(tmp_path, bound=300, done=[])  # parked in this session
    run = FakeRun()
    asyncio.run(watch(run))  # type: ignore[arg-type]
    assert run.continued == []  # its record never came (nothing in flight): resume's job
    assert store.get_task("t0").completed_by == "<timer>"  # fired, once, durably

    (tmp_path / "journalled").mkdir()
    watch, _, _ = _watch(tmp_path / "journalled", bound=300, done=[])
    watch._ledger.waited = {0}  # this session journalled its waiting record
    run = FakeRun()
    asyncio.run(watch(run))  # type: ignore[arg-type]
    assert run.continued == [([0], {0})]  # counted here: the coordinator counts it once
