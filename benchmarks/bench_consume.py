"""``shardflow consume`` against a hand-written Redis Streams consumer (issue 21), in one run
on the same machine and the same redis-server (a fresh stream each).

Run: ``.venv/bin/python -m pytest benchmarks/bench_consume.py -p no:cacheprovider -s``
(``BENCH_SCALE=0.1`` for a quick pass). Each side is timed from the moment its processes are
started to its last result (the results stream's last entry id is Redis's clock, in ms), so
start-up counts. Target: shardflow >= 0.60 of the hand-written rate. arq's rate for the same
job is recorded beside it when arq is installed (it is not a dependency).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
from consume.redis_server import RedisServer

HERE = Path(__file__).parent
SCALE = float(os.environ.get("BENCH_SCALE", "1"))
N = max(2000, int(100_000 * SCALE))
WORKERS = 2


def _fill(client: redis.Redis, stream: str, count: int) -> None:
    client.xgroup_create(stream, "g", id="0", mkstream=True)
    pipe = client.pipeline(transaction=False)
    for i in range(count):
        pipe.xadd(stream, {"data": orjson.dumps({"id": i})})
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()


def _last_result_ms(client: redis.Redis, stream: str, count: int) -> int:
    assert client.xlen(f"{stream}:results") == count
    last = client.xrevrange(f"{stream}:results", count=1)[0][0].decode()
    return int(last.split("-")[0])


def _rate(client: redis.Redis, stream: str, started: float) -> float:
    elapsed = _last_result_ms(client, stream, N) / 1000.0 - started
    return N / elapsed


def _shardflow(server: RedisServer, client: redis.Redis) -> float:
    _fill(client, "sf", N)
    started = time.time()
    subprocess.run([sys.executable, "-m", "shardflow", "consume", "shardflow.examples.notify:workflow",
                    "--redis", server.url, "--stream", "sf", "--group", "g", "--burst",
                    "--workers", str(WORKERS), "-q"], check=True, timeout=600)
    return _rate(client, "sf", started)


def _hand_written(server: RedisServer, client: redis.Redis) -> float:
    _fill(client, "hw", N)
    started = time.time()
    procs = [subprocess.Popen([sys.executable, str(HERE / "redis_streams_baseline.py"), server.url,
                               "hw", "g", f"c{i}"]) for i in range(WORKERS)]
    for proc in procs:
        assert proc.wait(timeout=600) == 0
    return _rate(client, "hw", started)


def _arq(server: RedisServer, client: redis.Redis, count: int) -> float | None:
    """arq's jobs/s for ``count`` jobs on WORKERS burst workers (start-up counted)."""
    try:
        import arq  # noqa: F401
    except ImportError:
        return None
    import asyncio

    from arq import create_pool
    from arq.connections import RedisSettings

    async def enqueue() -> None:
        pool = await create_pool(RedisSettings(host="127.0.0.1", port=server.port))
        for i in range(count):
            await pool.enqueue_job("notify", {"id": i})
        await pool.aclose()

    asyncio.run(enqueue())
    started = time.time()
    procs = [subprocess.Popen([sys.executable, str(HERE / "arq_notify.py"), str(server.port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for _ in range(WORKERS)]
    for proc in procs:
        proc.wait(timeout=600)
    return count / (time.time() - started)


def test_consume_reaches_60_percent_of_a_hand_written_consumer(benchmark: Any, tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis").start()
    try:
        client = server.client()
        client.config_set("appendonly", "no")  # the same for both: measure the consumers
        hand = _hand_written(server, client)
        ours = benchmark.pedantic(lambda: _shardflow(server, client), rounds=1, iterations=1)
        arq_rate = _arq(server, client, max(1000, N // 10))
    finally:
        server.stop()
    ratio = ours / hand
    figures = {"messages": N, "shardflow_per_second": round(ours), "hand_written_per_second": round(hand),
               "ratio": round(ratio, 3), "arq_per_second": round(arq_rate) if arq_rate else None}
    benchmark.extra_info.update(figures)
    print("\n" + "  ".join(f"{k}={v}" for k, v in figures.items()))
    assert ratio >= 0.60


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-p", "no:cacheprovider", "-s"]))
