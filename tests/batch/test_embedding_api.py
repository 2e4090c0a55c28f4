"""The embedding API behaves like concurrent.futures / Dask / Ray: ``submit`` returns a future
at once, so gathered submissions run concurrently; misuse fails at once with a clear error."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from shardflow import BatchExecutor, BatchResult, ShardflowError, run_batch
from shardflow.examples.notify import workflow as notify

RENDEZVOUS = f"{Path(__file__).parent / 'flows_embed.py'}:rendezvous"


@pytest.mark.timeout(90)
def test_gathered_submissions_run_concurrently(run: Any) -> None:
    """Six instances finish only when all six are inside one step at once (one worker): a
    serial submit would leave the first waiting alone and fail it after 30 s."""

    async def main() -> list[BatchResult]:
        async with BatchExecutor(RENDEZVOUS, workers=1) as ex:
            futures = [ex.submit({"id": i, "expected": 6}) for i in range(6)]
            assert all(isinstance(f, asyncio.Future) and not f.done() for f in futures)
            return list(await asyncio.gather(*futures))

    results = run(main())
    assert [r.status for r in results] == ["completed"] * 6, [r.error for r in results]
    assert [r.id for r in results] == list(range(6))


def test_awaiting_submit_directly_still_works(run: Any) -> None:
    async def main() -> BatchResult:
        async with BatchExecutor(notify, workers=1) as ex:
            return await ex.submit({"id": "a"})

    assert run(main()).status == "completed"


def test_submit_after_close_raises_at_once(run: Any) -> None:
    async def main() -> None:
        ex = BatchExecutor(notify, workers=1)
        with pytest.raises(ShardflowError, match="not running"):
            ex.submit({"id": 0})
        async with ex:
            pass
        with pytest.raises(ShardflowError, match="closed"):
            ex.submit({"id": 1})

    run(main())


def test_run_batch_inside_a_running_loop_points_to_batch_executor(run: Any) -> None:
    async def main() -> None:
        with pytest.raises(ShardflowError, match="BatchExecutor"):
            run_batch(notify, [{"id": 1}], workers=1)

    run(main())
