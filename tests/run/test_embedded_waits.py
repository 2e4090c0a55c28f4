"""A durable ``BatchExecutor`` continues its waiting instances when asked, as ``shardflow
resume`` would: a result that waits on a timer says when it is due (``waiting_until``), and
``await ex.continue_waiting()`` fires the due timers, continues every instance whose tasks
are all completed (timers fired, people's and webhooks' tasks completed with ``shardflow
tasks``), and returns their new results; ``wait_timers`` waits for timers due soon. Each
instance goes on once; a later executor on the same directory continues what an earlier one
parked."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from shardflow import BatchExecutor, BatchResult, ShardflowError, SQLiteTaskStore
from shardflow.run import read_state

FLOWS = Path(__file__).parent.parent / "batch" / "kind_flows.py"
TIMED = f"{FLOWS}:timed"
WEBHOOKED = f"{FLOWS}:webhooked"
DAY = 86400


def _by_id(results: list[BatchResult]) -> dict[Any, BatchResult]:
    keyed = {r.id: r for r in results}
    assert len(keyed) == len(results), "an id was answered twice"
    return keyed


def test_due_timers_are_continued_once_and_later_ones_say_when_they_are_due(
        tmp_path: Path) -> None:
    run_dir = tmp_path / "svc"

    async def main() -> None:
        async with BatchExecutor(TIMED, workers=1, run_dir=run_dir) as ex:
            before = time.time()
            parked = _by_id(list(await asyncio.gather(
                *(ex.submit({"id": i, "delay": d}) for i, d in enumerate([0, 1, DAY])))))
            assert {r.status for r in parked.values()} == {"waiting"}
            for i, delay in enumerate([0, 1, DAY]):
                until = parked[i].waiting_until
                assert until is not None and before + delay <= until <= time.time() + delay
            now = await ex.continue_waiting()  # 0 is due; 1 is not yet, and not waited for
            assert [(r.id, r.status, r.context and r.context["woke"]) for r in now] == [
                (0, "completed", True)]
            later = await ex.continue_waiting(wait_timers=60)  # 1 is due within 60 s
            assert [(r.id, r.status) for r in later] == [(1, "completed")]
            assert await ex.continue_waiting() == []  # nothing more is due: none runs twice
            again = await ex.submit({"id": 1, "delay": 1})  # answered from the journal
            assert (again.status, again.waiting_until) == ("completed", None)
            still = await ex.submit({"id": 2, "delay": DAY})
            assert still.status == "waiting" and still.waiting_until == parked[2].waiting_until

    asyncio.run(main())
    counts = read_state(run_dir / "journal.jsonl").counts
    assert counts == {"completed": 2, "waiting": 1}  # latest record per instance


def test_a_later_executor_continues_what_an_earlier_one_parked(tmp_path: Path) -> None:
    run_dir = tmp_path / "svc"

    async def first() -> BatchResult:
        async with BatchExecutor(WEBHOOKED, workers=1, run_dir=run_dir) as ex:
            return await ex.submit({"id": "order-7"})

    async def second() -> list[BatchResult]:
        async with BatchExecutor(WEBHOOKED, workers=1, run_dir=run_dir) as ex:
            assert await ex.continue_waiting() == []  # its webhook has not called yet
            store = SQLiteTaskStore(run_dir / "tasks.db")  # what 'shardflow tasks callback' does
            (task,) = store.list_tasks(kinds=["webhook"])
            store.complete_task(task.id, {"paid": 42}, None)
            store.close()
            return await ex.continue_waiting()

    parked = asyncio.run(first())
    assert (parked.status, parked.waiting_until) == ("waiting", None)  # no timer: no due time
    (done,) = asyncio.run(second())
    assert (done.id, done.status) == ("order-7", "completed")
    assert done.context is not None and done.context["payment"] == {"paid": 42}
    assert done.context["shipped"] is True


def test_continuing_needs_a_run_directory(tmp_path: Path) -> None:
    async def main() -> None:
        async with BatchExecutor(TIMED, workers=1) as ex:
            result = await ex.submit({"id": 0, "delay": 0})
            assert result.status == "waiting"  # nothing of it is kept: it cannot go on
            with pytest.raises(ShardflowError, match="run_dir"):
                await ex.continue_waiting()

    asyncio.run(main())


def test_an_instance_the_journal_says_ended_is_not_continued_again(tmp_path: Path) -> None:
    """A crash after a continued instance's final record was journalled but before the task
    store marked it finished: the next executor finds it ready in the store, and must not
    run it again (the journal says it ended)."""
    import sqlite3

    run_dir = tmp_path / "svc"

    async def session(submit: bool) -> list[BatchResult]:
        async with BatchExecutor(TIMED, workers=1, run_dir=run_dir) as ex:
            if submit:
                await ex.submit({"id": 0, "delay": 0})
            return await ex.continue_waiting()

    assert [r.status for r in asyncio.run(session(True))] == ["completed"]
    with sqlite3.connect(run_dir / "tasks.db") as db:  # the finished mark never made it
        db.execute("UPDATE instances SET status = 'waiting'")
    assert asyncio.run(session(False)) == []
    with sqlite3.connect(run_dir / "tasks.db") as db:
        assert db.execute("SELECT status FROM instances").fetchall() == [("finished",)]
    assert read_state(run_dir / "journal.jsonl").counts == {"completed": 1}


def test_shardflow_resume_of_an_embedded_run_says_how_to_continue_it(tmp_path: Path) -> None:
    import subprocess
    import sys

    run_dir = tmp_path / "svc"

    async def park() -> None:
        async with BatchExecutor(WEBHOOKED, workers=1, run_dir=run_dir) as ex:
            await ex.submit({"id": 1})

    asyncio.run(park())
    resumed = subprocess.run([sys.executable, "-m", "shardflow", "resume", str(run_dir),
                              "--no-progress"], capture_output=True, text=True, timeout=60)
    assert resumed.returncode == 2, resumed.stderr
    assert "Traceback" not in resumed.stderr
    assert "continue_waiting()" in resumed.stderr
