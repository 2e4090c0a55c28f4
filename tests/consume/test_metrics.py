"""``shardflow run --metrics-port``: the same /metrics and /healthz as ``consume``."""

from __future__ import annotations

import subprocess
import sys
import time

import orjson

from consume.helpers import HERE, env, http_get, wait_started
from consume.redis_server import RedisServer, free_port


def test_run_serves_metrics_and_health_while_it_runs(redis_server: RedisServer, tmp_path) -> None:
    source = tmp_path / "in.jsonl"
    records = [{"id": i} for i in range(10)] + [{"id": "slow", "sleep": 3}, {"id": "bad", "fail": 1}]
    source.write_bytes(b"\n".join(orjson.dumps(r) for r in records) + b"\n")
    port = free_port()
    run = subprocess.Popen(
        [sys.executable, "-m", "shardflow", "run", "flows:work", "--app-dir", str(HERE), "-i",
         str(source), "-o", str(tmp_path / "out.jsonl"), "-w", "1", "--no-journal",
         "--metrics-port", str(port), "--metrics-host", "127.0.0.1"],
        env=env(redis_server.url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_started(redis_server.client(), 1)  # the slow one runs: the run is in progress
        deadline = time.monotonic() + 30
        while 'shardflow_instances_total{status="completed"} 10.0' not in http_get(port, "/metrics")[1]:
            assert time.monotonic() < deadline, http_get(port, "/metrics")[1]
            time.sleep(0.05)
        status, text = http_get(port, "/metrics")
        assert status == 200
        assert 'shardflow_instances_total{status="failed"} 1.0' in text
        assert "shardflow_in_flight 1.0" in text
        assert "shardflow_worker_restarts_total 0.0" in text
        assert "# TYPE shardflow_step_duration_seconds histogram" in text
        assert "shardflow_instance_duration_seconds_count 11.0" in text
        assert http_get(port, "/healthz") == (200, "ok\n")
    finally:
        _, stderr = run.communicate(timeout=60)
    assert run.returncode == 1, stderr  # one instance failed


class _Pool:
    """What the metrics read of a pool: two worker incarnations' cumulative STATS."""

    def __init__(self) -> None:
        self.step_stats = {(0, 1): {"work": [3, 30.0, 20.0, 0.0, 0]},
                           (0, 2): {"work": [1, 10.0, 10.0, 0.0, 0], "finish": [4, 4.0, 1.0, 0.0, 0]}}
        self.restarts = 1
        self.in_flight = 7
        self.error: BaseException | None = None


def test_step_timings_of_every_worker_incarnation_add_up() -> None:
    from shardflow.metrics.registry import Metrics

    metrics = Metrics()
    pool = _Pool()
    metrics.attach(pool)
    text = metrics.render().decode()
    assert 'shardflow_step_duration_seconds_count{step="work"} 4.0' in text
    assert 'shardflow_step_duration_seconds_sum{step="work"} 0.04' in text
    assert 'shardflow_step_duration_seconds_bucket{le="+Inf",step="finish"} 4.0' in text
    assert "shardflow_worker_restarts_total 1.0" in text and "shardflow_in_flight 7.0" in text
    assert metrics.workers_health() is None
    pool.error = RuntimeError("workers could not start")
    assert metrics.workers_health() == "workers stopped: workers could not start"
    metrics.attach(None)
    assert metrics.workers_health() == "no worker pool is running"
