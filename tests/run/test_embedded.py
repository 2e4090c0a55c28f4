"""A durable embedding: ``BatchExecutor(..., run_dir=...)`` journals every result before its
future resolves, holds the run's lock, keeps waiting instances in tasks.db, and answers a
restarted service's repeated ids from the journal instead of running them again."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from shardflow import BatchExecutor, BatchResult, ConfigError, ContextValueError, SQLiteTaskStore
from shardflow.run import RunLockedError, read_state

FLOWS = Path(__file__).parent.parent / "batch" / "flows_embed.py"
COUNTED = f"{FLOWS}:counted"
RENDEZVOUS = f"{FLOWS}:rendezvous"


@pytest.fixture
def test_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SHARDFLOW_TEST_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _executions(test_dir: Path) -> list[int]:
    log = test_dir / "executions.log"
    return sorted(int(x) for x in log.read_text().split()) if log.exists() else []


def _submit_all(run_dir: Path, ids: range, workflow: str = COUNTED) -> list[BatchResult]:
    async def main() -> list[BatchResult]:
        async with BatchExecutor(workflow, workers=1, run_dir=run_dir) as ex:
            return list(await asyncio.gather(*(ex.submit({"id": i}) for i in ids)))

    return asyncio.run(main())


def test_results_are_journalled_in_a_private_run_directory(test_dir: Path) -> None:
    run_dir = test_dir / "svc"
    results = _submit_all(run_dir, range(20))
    assert [r.status for r in results] == ["completed"] * 20
    state = read_state(run_dir / "journal.jsonl")
    assert state.counts == {"completed": 20} and not state.damage
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((run_dir / "journal.jsonl").stat().st_mode) == 0o600


def test_a_restarted_service_does_not_run_finished_ids_again(test_dir: Path) -> None:
    run_dir = test_dir / "svc"
    first = _submit_all(run_dir, range(20))
    again = _submit_all(run_dir, range(30))  # the service restarted and retries everything
    assert _executions(test_dir) == list(range(30))  # ids 0..19 ran once, in the first life
    assert [r.context for r in again[:20]] == [r.context for r in first]
    assert read_state(run_dir / "journal.jsonl").counts == {"completed": 30}


def test_ids_are_typed_so_1_and_quoted_1_are_two_instances(test_dir: Path) -> None:
    run_dir = test_dir / "svc"
    _submit_all(run_dir, range(1, 2))

    async def main() -> BatchResult:
        async with BatchExecutor(COUNTED, workers=1, run_dir=run_dir) as ex:
            return await ex.submit({"id": "1"})

    assert asyncio.run(main()).id == "1"
    assert len(_executions(test_dir)) == 2


def test_a_second_executor_on_a_live_run_directory_is_refused(test_dir: Path) -> None:
    run_dir = test_dir / "svc"

    async def main() -> None:
        async with BatchExecutor(COUNTED, workers=1, run_dir=run_dir):
            with pytest.raises(RunLockedError, match=str(os.getpid())):
                async with BatchExecutor(COUNTED, workers=1, run_dir=run_dir):
                    pass

    asyncio.run(main())


def test_a_run_directory_of_another_workflow_is_refused(test_dir: Path) -> None:
    run_dir = test_dir / "svc"
    _submit_all(run_dir, range(2))

    async def main() -> None:
        async with BatchExecutor(RENDEZVOUS, workers=1, run_dir=run_dir):
            pass

    with pytest.raises(ConfigError, match="directory of its own"):
        asyncio.run(main())


def test_waiting_instances_are_kept_in_the_task_store(test_dir: Path) -> None:
    run_dir = test_dir / "svc"

    async def main() -> list[BatchResult]:
        async with BatchExecutor("shardflow.examples.approvals:workflow", workers=1,
                                 run_dir=run_dir) as ex:
            return list(await asyncio.gather(*(ex.submit({"id": i, "amount": 10}) for i in range(3))))

    results = asyncio.run(main())
    assert {r.status for r in results} == {"waiting"}
    store = SQLiteTaskStore(run_dir / "tasks.db")
    try:
        assert store.waiting_count() == 3 and store.list_tasks()
    finally:
        store.close()


def test_input_outside_the_data_contract_is_refused_at_submit(test_dir: Path) -> None:
    async def main() -> Any:
        async with BatchExecutor(COUNTED, workers=1) as ex:
            with pytest.raises(ContextValueError, match="amount"):
                ex.submit({"id": 1, "amount": float("nan")})

    asyncio.run(main())


def test_an_input_without_id_never_answers_a_later_id(test_dir: Path) -> None:
    """An id-less input runs as its seq; after a restart, {"id": 0} is a new instance."""
    run_dir = test_dir / "svc"

    async def first() -> BatchResult:
        async with BatchExecutor(COUNTED, workers=1, run_dir=run_dir) as ex:
            return await ex.submit({"value": "no id"})

    async def second() -> BatchResult:
        async with BatchExecutor(COUNTED, workers=1, run_dir=run_dir) as ex:
            return await ex.submit({"id": 0, "value": "real"})

    asyncio.run(first())
    result = asyncio.run(second())
    assert result.context is not None and result.context["value"] == "real"


def test_a_duplicate_in_the_same_session_runs_once(test_dir: Path) -> None:
    async def main() -> list[BatchResult]:
        async with BatchExecutor(COUNTED, workers=1, run_dir=test_dir / "svc") as ex:
            first = await asyncio.gather(ex.submit({"id": 7}), ex.submit({"id": 7}))
            later = await ex.submit({"id": 7})
            return [*first, later]

    results = asyncio.run(main())
    assert [r.id for r in results] == [7, 7, 7]
    assert _executions(test_dir) == [7]
