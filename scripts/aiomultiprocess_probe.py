"""Why shardflow does not use aiomultiprocess (see docs/DECISIONS.md): its throughput with one
item per call and with batches, and what ``Pool.map`` does when a worker process is killed.

Run: ``pip install aiomultiprocess && python scripts/aiomultiprocess_probe.py``
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

import aiomultiprocess  # type: ignore[import-not-found]


async def work(x: int) -> int:
    if x == -1:
        os.kill(os.getpid(), signal.SIGKILL)  # the worker dies, as under the OOM killer
    return x * 2


async def batch(xs: list[int]) -> list[int]:
    return [x * 2 for x in xs]


async def main() -> None:
    n = 20_000
    async with aiomultiprocess.Pool(processes=2) as pool:
        await pool.map(work, range(100))
        started = time.perf_counter()
        await pool.map(work, range(n))
        one = n / (time.perf_counter() - started)
        chunks = [list(range(i, i + 1024)) for i in range(0, 200 * 1024, 1024)]
        started = time.perf_counter()
        await pool.map(batch, chunks)
        batched = 200 * 1024 / (time.perf_counter() - started)
    print(f"one item per call: {one:,.0f}/s; batches of 1024: {batched:,.0f}/s")
    pool = aiomultiprocess.Pool(processes=2)
    try:
        result = await asyncio.wait_for(pool.map(work, [1, 2, -1, 3, 4]), 20)
        print("with a killed worker, map returned", result)
    except TimeoutError:
        print("with a killed worker, map hung (no result after 20 s)")
    finally:
        pool.terminate()


if __name__ == "__main__":
    asyncio.run(main())
