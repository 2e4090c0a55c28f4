"""The hand-written baseline ``shardflow bench --baseline`` compares against: the same
workload written directly with multiprocessing + uvloop (where installed) + asyncio.gather and a dict context,
no engine. It does the same I/O the batch executor does (results go back to the parent as
JSON lines, in batches), so the ratio measures what the engine and coordinator cost.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import time
from typing import Any

import orjson

IO_SECONDS = 0.01


async def _noop(ctx: dict[str, Any], key: str) -> None:
    ctx[key] = True


async def _io(ctx: dict[str, Any], key: str) -> None:
    await asyncio.sleep(IO_SECONDS)
    ctx[key] = True


async def _forkjoin(i: int, io: bool) -> bytes:
    ctx: dict[str, Any] = {"id": i}
    await _noop(ctx, "processed")
    branch = _io if io else _noop
    await asyncio.gather(branch(ctx, "email_sent"), branch(ctx, "slack_sent"),
                         branch(ctx, "sms_sent"))
    ctx["channels"] = [c for c in ("email", "slack", "sms") if ctx.get(f"{c}_sent")]
    return orjson.dumps({"id": i, "status": "completed", "context": ctx})


async def _linear10(i: int, io: bool) -> bytes:
    ctx: dict[str, Any] = {"id": i}
    for step in range(10):
        await _noop(ctx, f"s{step}")
    return orjson.dumps({"id": i, "status": "completed", "context": ctx})


def _process(workload: str, first: int, count: int, max_in_flight: int,
             go: Any, results: Any) -> None:
    from shardflow._loop import run

    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    fn = _linear10 if workload == "linear10" else _forkjoin
    io = workload == "forkjoin-io"

    async def main() -> None:
        slots = asyncio.Semaphore(max_in_flight)
        batch: list[bytes] = []
        done = asyncio.Event()
        left = count

        def finished(task: asyncio.Task[bytes]) -> None:
            nonlocal left
            slots.release()
            batch.append(task.result())
            left -= 1
            if len(batch) >= 256 or left == 0:
                results.put(batch.copy())
                batch.clear()
            if left == 0:
                done.set()

        results.put("ready")
        go.wait()
        for i in range(first, first + count):
            await slots.acquire()
            asyncio.get_running_loop().create_task(fn(i, io)).add_done_callback(finished)
        if count:
            await done.wait()

    run(main())


def run_baseline(workload: str, instances: int, workers: int, max_in_flight: int) -> float:
    """Seconds the hand-written version takes for ``instances`` (start-up not counted)."""
    ctx = multiprocessing.get_context("spawn")
    go = ctx.Event()
    results = ctx.Queue()
    share, extra = divmod(instances, workers)
    procs = []
    first = 0
    for w in range(workers):
        count = share + (1 if w < extra else 0)
        proc = ctx.Process(target=_process,
                           args=(workload, first, count, max_in_flight, go, results))
        proc.start()
        procs.append(proc)
        first += count
    for _ in procs:  # start-up is not timed: wait until every process is ready
        assert results.get() == "ready"
    started = time.perf_counter()
    go.set()
    received = 0
    while received < instances:
        received += len(results.get())
    elapsed = time.perf_counter() - started
    for proc in procs:
        proc.join()
    return elapsed
