"""BatchExecutor from asyncio code: submit, map (sync and async inputs), clean shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from shardflow import BatchExecutor, WorkflowValidationError, run_batch
from shardflow.examples.notify import workflow as notify
from support.e2e import flow


def test_submit_and_map(run: Any) -> None:
    async def main() -> None:
        async with BatchExecutor(notify, workers=2, max_in_flight=64) as ex:
            one, two = await asyncio.gather(ex.submit({"id": "a"}), ex.submit({"id": "b"}))
            assert (one.id, one.status, two.id) == ("a", "completed", "b")
            assert one.context is not None and one.context["channels"] == ["email", "slack", "sms"]
            ordered = [r.id async for r in ex.map({"id": i} for i in range(1000))]
            assert ordered == list(range(1000))

            async def source() -> AsyncIterator[dict[str, Any]]:
                for i in range(300):
                    yield {"id": i}

            unordered = [r.id async for r in ex.map(source(), ordered=False, window=50)]
            assert sorted(unordered) == list(range(300))

    run(main())


def test_failures_come_back_as_results(run: Any, test_dir: Path) -> None:
    async def main() -> None:
        async with BatchExecutor(flow("not_json"), workers=1) as ex:
            results = [r async for r in ex.map({"id": i, "value": i} for i in range(5))]
        assert [r.status for r in results] == ["completed"] * 3 + ["failed", "completed"]
        assert results[3].error is not None and results[3].error["type"] == "ContextValueError"
        assert not results[3].ok and results[0].ok

    run(main())


def test_leaving_with_an_error_stops_the_workers_at_once(run: Any, test_dir: Path) -> None:
    async def main() -> tuple[list[int], asyncio.Future[Any]]:
        ex = BatchExecutor(flow("killed_mid_run"), workers=1)
        with pytest.raises(RuntimeError, match="boom"):
            async with ex:
                pids = ex.worker_pids()
                pending = asyncio.ensure_future(ex.submit({"id": 1}))
                await asyncio.sleep(0)
                raise RuntimeError("boom")
        return pids, pending

    pids, pending = run(main())
    assert pids and pending.cancelled()
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists()


def test_run_batch_and_definition_errors() -> None:
    results = run_batch("shardflow.examples.chord:workflow", [{"id": i} for i in range(20)],
                        workers=1)
    assert [r.id for r in results] == list(range(20))
    assert results[0].context is not None
    assert results[0].context["combined_data"]["api2"] == {"rows": 2}
    with pytest.raises(WorkflowValidationError, match="email_api"):
        run_batch(flow("limited"), [{"id": 1}], workers=1)
