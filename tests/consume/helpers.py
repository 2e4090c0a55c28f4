"""Running ``shardflow consume`` / ``enqueue`` as the user does, and reading what they wrote."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.error import HTTPError

import orjson
import redis

HERE = Path(__file__).parent
STREAM = "jobs"


def env(url: str) -> dict[str, str]:
    return {**os.environ, "SHARDFLOW_TEST_REDIS": url, "PYTHONUNBUFFERED": "1"}


def consume_args(url: str, target: str = "flows:work", *extra: str) -> list[str]:
    return [sys.executable, "-m", "shardflow", "consume", target, "--app-dir", str(HERE),
            "--redis", url, "--stream", STREAM, "--workers", "1", *extra]


def consume(url: str, *extra: str, target: str = "flows:work",
            timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(consume_args(url, target, *extra), env=env(url), capture_output=True,
                          text=True, timeout=timeout)


def start_consumer(url: str, *extra: str, target: str = "flows:work") -> subprocess.Popen[str]:
    """A consumer in a process group of its own (its workers too), so the test can kill it
    all; a test that fails before it ends kills it (:func:`reap`)."""
    process = subprocess.Popen(consume_args(url, target, *extra), env=env(url), text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    _started.append(process)
    return process


_started: list[subprocess.Popen[str]] = []


def reap() -> None:
    """Kill the process group of every consumer a test started and left running."""
    while _started:
        process = _started.pop()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()


def kill_midway(client: redis.Redis, url: str, *extra: str) -> tuple[list[str], list[str]]:
    """Ten quick messages and five slow ones (30 s each); a consumer named ``victim`` (given
    ``extra``) finishes the quick ones and is SIGKILLed, with its workers, while every slow
    one runs. The quick and the slow messages' ids."""
    quick = add(client, *({"id": f"q{i}"} for i in range(10)))
    slow = add(client, *({"id": f"s{i}", "sleep": 30} for i in range(5)))
    victim = start_consumer(url, "--consumer", "victim", *extra)
    wait_started(client, 5)  # every slow one is running in the victim's worker
    wait_results(client, 10)  # and the quick ones are done
    os.killpg(victim.pid, signal.SIGKILL)  # the consumer and its workers
    victim.communicate(timeout=30)
    return quick, slow


def add(client: redis.Redis, *records: dict[str, Any]) -> list[str]:
    return [client.xadd(STREAM, {"data": orjson.dumps(r)}).decode() for r in records]


def results(client: redis.Redis) -> dict[str, list[dict[str, Any]]]:
    """Message id -> the result records written for it (one each, if all is well)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for _, fields in client.xrange(f"{STREAM}:results"):
        found.setdefault(fields[b"id"].decode(), []).append(orjson.loads(fields[b"record"]))
    return found


def pending(client: redis.Redis, group: str = "shardflow") -> int:
    return int(client.xpending(STREAM, group)["pending"])


def wait_started(client: redis.Redis, count: int, timeout: float = 60) -> list[str]:
    """Block until ``count`` steps reported their start (the ``started`` list)."""
    started = []
    for _ in range(count):
        item = client.blpop(["started"], timeout=timeout)
        assert item is not None, f"only {len(started)} of {count} steps started"
        started.append(item[1].decode())
    return started


def wait_results(client: redis.Redis, count: int) -> None:
    """Block on the results stream until it holds ``count`` entries."""
    last = "0-0"
    seen = 0
    while seen < count:
        reply = client.xread({"jobs:results": last}, block=60_000)
        assert reply, f"only {seen} of {count} results"
        entries = reply[0][1]
        seen += len(entries)
        last = entries[-1][0]


def http_get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as reply:
            return reply.status, reply.read().decode()
    except HTTPError as exc:
        return exc.code, exc.read().decode()


def http_status(port: int) -> int:
    return http_get(port, "/healthz")[0]


def wait_health(port: int, status: int) -> None:
    """The health endpoint is polled, as a load balancer does (generous deadline)."""
    deadline = time.monotonic() + 30
    while http_status(port) != status:
        assert time.monotonic() < deadline, f"/healthz never answered {status}"
        time.sleep(0.05)


def events(client: redis.Redis, stream: str = f"{STREAM}:events") -> dict[str, list[str]]:
    """Message id -> the event types written for it, in stream order."""
    found: dict[str, list[str]] = {}
    for _, fields in client.xrange(stream):
        record = orjson.loads(fields[b"record"])
        assert record["event"] == fields[b"event"].decode()
        found.setdefault(fields[b"id"].decode(), []).append(record["event"])
    return found


COMPLETED_EVENTS = ["workflow.started", "step.started", "step.completed", "step.started",
                    "step.completed", "workflow.completed"]
"""The events of one instance of ``flows:work`` that completes, in order."""
