"""How fast a limit-bound Ray run recovers when a shard actor's process is killed (its node
fine): completions per 0.5 s after the kill, with the rule for such a loss (first loss
re-runs in batches) or, with ``--suspects``, the old one (every lost job alone).

    .venv/bin/python scripts/ray_actor_loss.py [--suspects]

A limit of 8 on a 20 ms step (a ceiling of 200 per 0.5 s), 2 shard actors, 32 instances
in flight each; instance 3 holds its actor until the script kills that actor's process.
"""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import ray
import uvloop

import shardflow.backends.ray.pool as pool
from shardflow.run.executor import BatchExecutor

FLOWS = f"{Path(__file__).resolve().parent.parent / 'tests' / 'ray_backend' / 'flows.py'}:limited"


async def after_the_kill(tmp: Path) -> list[float]:
    """Seconds from the kill to each answer of an instance not answered before it."""
    fifo = tmp / "held.fifo"
    os.mkfifo(fifo)

    def held_by() -> int:
        with open(fifo) as held:
            return int(held.read())

    async with BatchExecutor(FLOWS, workers=2, backend="ray", limits={"api": 8},
                             max_in_flight=32) as ex:
        futures = [ex.submit({"id": i, "log": str(tmp / "api.log"), "sleep": 0.02, "hold": 3,
                              "dir": str(tmp)}) for i in range(3000)]
        victim = await asyncio.to_thread(held_by)
        await asyncio.sleep(0.5)  # the run at full rate
        answered: list[float] = []
        for future in futures:
            if not future.done():
                future.add_done_callback(lambda _: answered.append(time.monotonic()))
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        await asyncio.gather(*futures)
    return [t - killed for t in answered]


def main() -> None:
    if "--suspects" in sys.argv:
        pool.alone_from = lambda exc: 1  # type: ignore[assignment,misc]
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            times = uvloop.run(after_the_kill(Path(tmp)))
    finally:
        ray.shutdown()
    windows = collections.Counter(int(t / 0.5) for t in times)
    print("answers per 0.5 s after the kill:", [windows.get(i, 0) for i in range(6)])


if __name__ == "__main__":
    main()
