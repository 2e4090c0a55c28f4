"""The notify fork/join on the tools people compare shardflow with, written the way each is
meant to be used, to put their throughput beside shardflow's on the same machine.

    python scripts/peers.py {shardflow,ray,dask,celery,arq,parallel,all} [-n N] [--workers 2]

The workload is the one ``shardflow bench --workload forkjoin`` runs: ``process`` ->
``send_email`` | ``send_sms`` | ``send_slack`` -> ``complete`` with no-op steps over a small
dict context, one instance per input id, on ``--workers`` worker processes. Each peer gets its
own idiom:

* ray: two async actors; one actor call per instance (the fork is ``asyncio.gather`` inside);
* dask: ``distributed`` with a local cluster of N worker processes; each instance is a graph
  of five tasks (``client.submit`` per step, the join taking the three branch futures);
* celery: a Redis broker and result backend, ``worker --concurrency N``; each instance a
  ``chain(process, chord(group(email, sms, slack), complete))``;
* arq: Redis, N ``arq`` worker processes; one job per instance (arq has no graphs, so the
  job runs the fork with ``asyncio.gather``);
* parallel: GNU parallel ``-j N``, one ``python3`` process per instance, as its manual's
  "one job per input line" does.

Needs what each peer needs, none of it a shardflow dependency:
``pip install ray 'dask[distributed]' 'celery[redis]' arq redis`` and
``apt-get install redis-server parallel``. A peer whose package or program is missing is
skipped with the reason. Redis is started on a free loopback port in a scratch directory and
stopped after. Prints one line per peer: instances/s, seconds, N.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BRANCHES = ("email_sent", "sms_sent", "slack_sent")


# -- the workload, as plain functions every peer calls ----------------------------------------
def process(ctx: dict[str, Any]) -> dict[str, Any]:
    return {**ctx, "processed": True}


def branch(ctx: dict[str, Any], flag: str) -> dict[str, Any]:
    return {flag: True}


def complete(ctx: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, Any]:
    merged = dict(ctx)
    for result in results:
        merged.update(result)
    merged["channels"] = sorted(k for k in BRANCHES if merged.get(k))
    return merged


async def instance(i: int) -> dict[str, Any]:
    """One instance in one coroutine: what arq jobs and Ray actor calls run."""
    ctx = process({"id": i})

    async def one(flag: str) -> dict[str, Any]:
        return branch(ctx, flag)

    return complete(ctx, list(await asyncio.gather(*(one(f) for f in BRANCHES))))


def _check(results: list[dict[str, Any]], n: int) -> None:
    bad = [r for r in results if r.get("channels") != sorted(BRANCHES)]
    if len(results) != n or bad:
        raise SystemExit(f"peers: wrong results: {len(results)} of {n}, {len(bad)} incomplete")


# -- peers -----------------------------------------------------------------------------------
def run_shardflow(n: int, workers: int) -> float:
    """``shardflow bench --baseline`` of the same workload (the medians of 3 rounds); prints
    the hand-written multiprocessing + uvloop + ``asyncio.gather`` baseline's line too."""
    import orjson

    out = subprocess.run([sys.executable, "-m", "shardflow", "bench", "--workload", "forkjoin",
                          "-n", str(n), "-w", str(workers), "--rounds", "3", "--baseline",
                          "--json"], capture_output=True, check=True)
    report = orjson.loads(out.stdout)
    base = report["baseline_instances_per_second"]["median"]
    print(f"{'by hand':10} {base:>10,.0f} instances/s  ({n:,} instances, {workers} workers, "
          "multiprocessing + uvloop + asyncio.gather, no engine)", flush=True)
    return float(report["instances_per_second"]["median"])


def run_ray(n: int, workers: int) -> float:
    import ray

    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        @ray.remote(num_cpus=1)
        class Shard:
            async def run(self, i: int) -> dict[str, Any]:
                return await instance(i)

        shards = [Shard.remote() for _ in range(workers)]  # type: ignore[attr-defined]
        ray.get([s.run.remote(-1) for s in shards])  # started before the clock
        start = time.perf_counter()
        refs = [shards[i % workers].run.remote(i) for i in range(n)]
        results = ray.get(refs)
        seconds = time.perf_counter() - start
    finally:
        ray.shutdown()
    _check(results, n)
    return n / seconds


def run_dask(n: int, workers: int) -> float:
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        client.submit(process, {"id": -1}).result()
        start = time.perf_counter()
        ends = []
        for i in range(n):
            first = client.submit(process, {"id": i}, pure=False)
            parts = [client.submit(branch, first, flag, pure=False) for flag in BRANCHES]
            ends.append(client.submit(complete, first, parts, pure=False))
        results = client.gather(ends)
        seconds = time.perf_counter() - start
    _check(results, n)
    return n / seconds


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def redis_server() -> Iterator[str]:
    """A throwaway redis-server on loopback (no persistence), stopped by its pid."""
    if shutil.which("redis-server") is None:
        raise _Skip("redis-server is not installed (apt-get install redis-server)")
    port = _free_port()
    scratch = tempfile.mkdtemp(prefix="peers-redis-")
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", scratch],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise _Skip("redis-server did not start") from None
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(scratch, ignore_errors=True)


@contextmanager
def _workers(commands: list[list[str]], env: dict[str, str]) -> Iterator[None]:
    procs = [subprocess.Popen(c, env=env, cwd=HERE, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for c in commands]
    try:
        yield
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def run_celery(n: int, workers: int) -> float:
    with redis_server() as url:
        env = {**os.environ, "PEERS_REDIS": url}
        os.environ["PEERS_REDIS"] = url
        app = celery_app(url)
        tasks = app.tasks
        from celery import chain, chord, group

        worker = [sys.executable, "-m", "celery", "--app", "peers:celery_app_from_env", "worker",
                  "--concurrency", str(workers), "--pool", "prefork", "--loglevel", "WARNING",
                  "--without-heartbeat", "--without-gossip", "--without-mingle"]
        with _workers([worker], env):
            def one(i: int) -> Any:
                return chain(tasks["peers.process"].s({"id": i}),
                             chord(group(tasks["peers.branch"].s(f) for f in BRANCHES),
                                   tasks["peers.complete_branches"].s()))

            one(-1).apply_async().get(timeout=60)  # the worker is up
            start = time.perf_counter()
            pending = [one(i).apply_async() for i in range(n)]
            results = [p.get(timeout=600) for p in pending]
            seconds = time.perf_counter() - start
    _check(results, n)
    return n / seconds


def celery_app(url: str) -> Any:
    from celery import Celery

    app = Celery("peers", broker=url, backend=url)
    app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"],
                    worker_prefetch_multiplier=64, result_expires=600)

    @app.task(name="peers.process")
    def _process(ctx: dict[str, Any]) -> dict[str, Any]:
        return process(ctx)

    @app.task(name="peers.branch")
    def _branch(ctx: dict[str, Any], flag: str) -> dict[str, Any]:
        return {**ctx, **branch(ctx, flag)}  # a chord's callback sees only the branch results

    @app.task(name="peers.complete_branches")
    def _complete(results: list[dict[str, Any]]) -> dict[str, Any]:
        return complete({}, results)

    return app


def __getattr__(name: str) -> Any:
    """``peers:celery_app_from_env`` (the worker's ``--app``) and ``peers:ArqSettings``
    (``arq``'s settings class) made on first use, so this file imports without the peers."""
    if name == "celery_app_from_env":
        return celery_app(os.environ["PEERS_REDIS"])
    if name == "ArqSettings":
        from arq.connections import RedisSettings
        from arq.worker import func

        async def arq_instance(ctx: dict[str, Any], i: int) -> dict[str, Any]:
            return await instance(i)

        return type("ArqSettings", (), {
            "functions": [func(arq_instance, name="arq_instance")], "max_jobs": 1000, "keep_result": 600,
            "redis_settings": RedisSettings.from_dsn(os.environ["PEERS_REDIS"])})
    raise AttributeError(name)


def run_arq(n: int, workers: int) -> float:
    from arq import create_pool
    from arq.connections import RedisSettings

    with redis_server() as url:
        env = {**os.environ, "PEERS_REDIS": url, "PYTHONPATH": str(HERE)}
        worker = [sys.executable, "-m", "arq", "peers.ArqSettings"]
        with _workers([worker] * workers, env):
            async def main() -> float:
                redis = await create_pool(RedisSettings.from_dsn(url))
                warm = await redis.enqueue_job("arq_instance", -1)
                assert warm is not None
                await warm.result(timeout=60)
                start = time.perf_counter()
                jobs = [await redis.enqueue_job("arq_instance", i) for i in range(n)]
                results = [await job.result(timeout=600) for job in jobs if job is not None]
                seconds = time.perf_counter() - start
                await redis.aclose()
                _check(results, n)
                return n / seconds

            return asyncio.run(main())


def run_parallel(n: int, workers: int) -> float:
    if shutil.which("parallel") is None:
        raise _Skip("GNU parallel is not installed (apt-get install parallel)")
    code = (f"import asyncio, sys; sys.path.insert(0, {str(HERE)!r}); import peers; "
            "r = asyncio.run(peers.instance(int(sys.argv[1]))); "
            "assert r['channels'] == sorted(peers.BRANCHES)")
    start = time.perf_counter()
    subprocess.run(["parallel", "-q", "-j", str(workers), "--halt", "now,fail=1", sys.executable,
                    "-c", code, ":::", *map(str, range(n))], check=True,
                   stdout=subprocess.DEVNULL)
    return n / (time.perf_counter() - start)


class _Skip(Exception):
    """A peer that cannot run here; the message says what to install."""


PEERS: dict[str, tuple[Callable[[int, int], float], str | None, int]] = {
    # name: (runner, the package it needs, default N: enough for a few seconds each)
    "shardflow": (run_shardflow, "shardflow", 200_000),
    "ray": (run_ray, "ray", 20_000),
    "dask": (run_dask, "distributed", 2_000),
    "celery": (run_celery, "celery", 2_000),
    "arq": (run_arq, "arq", 5_000),
    "parallel": (run_parallel, None, 200),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("peer", choices=[*PEERS, "all"])
    parser.add_argument("-n", type=int, default=None, help="instances (default: per peer)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    for name in PEERS if args.peer == "all" else [args.peer]:
        runner, package, default_n = PEERS[name]
        n = args.n or default_n
        if package is not None and importlib.util.find_spec(package) is None:
            print(f"{name:10} skipped: pip install {package}")
            continue
        try:
            start = time.perf_counter()
            rate = runner(n, args.workers)
        except _Skip as exc:
            print(f"{name:10} skipped: {exc}")
            continue
        print(f"{name:10} {rate:>10,.0f} instances/s  ({n:,} instances, {args.workers} workers, "
              f"{time.perf_counter() - start:.1f} s with start-up)", flush=True)


if __name__ == "__main__":
    main()
