"""``shardflow bench``: throughput of a built-in workload, optionally against the hand-written
baseline in the same invocation, with latency percentiles and the process tree's peak RSS."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from shardflow._loop import run as run_loop
from shardflow._text import plural
from shardflow.batch.config import RunConfig
from shardflow.batch.coordinator import Coordinator
from shardflow.batch.ledger import RunLedger
from shardflow.batch.sinks import NullSink
from shardflow.batch.sources import generated
from shardflow.bench.baseline import run_baseline
from shardflow.bench.workloads import WORKLOADS
from shardflow.model.loader import reference_of

_PAGE = os.sysconf("SC_PAGE_SIZE")

STEPS_PER_INSTANCE = {"forkjoin": 5, "forkjoin-io": 5, "linear10": 10, "limit50": 1}
LIMITS = {"limit50": {"api": 50}}


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            text = Path(f"/proc/{pid}/task/{task}/children").read_text()
            found.extend(int(c) for c in text.split())
    except OSError:
        pass
    return found


def tree_rss(pid: int | None = None) -> int:
    """Resident bytes of a process and all its descendants (Linux /proc)."""
    total = 0
    stack = [pid or os.getpid()]
    while stack:
        current = stack.pop()
        try:
            total += int(Path(f"/proc/{current}/statm").read_text().split()[1]) * _PAGE
        except (OSError, IndexError, ValueError):
            continue
        stack.extend(_children(current))
    return total


class PeakRss:
    """Samples the process tree's RSS every 50 ms in a thread; ``peak`` is the maximum."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, tree_rss())
            if self._stop.wait(0.05):
                return


@contextlib.contextmanager
def _ray_for(backend: str, workers: int) -> Iterator[float | None]:
    """With ``backend="ray"``: a local Ray started before the run and shut down after it
    (unless this process joined one already), so the measured window holds the workload
    only, not Ray's start (2.5-9 s) or its shutdown (~1.4 s, which the run's own close
    would otherwise add). Yields how long ``ray.init`` took."""
    if backend != "ray":
        yield None
        return
    import ray

    from shardflow.backends.ray.ray_logging import route_process_lines, route_ray_loggers

    if ray.is_initialized():
        yield None
        return
    route_ray_loggers()
    began = time.monotonic()
    ray.init(num_cpus=max(workers, os.cpu_count() or 1), include_dashboard=False,
             configure_logging=False)
    route_process_lines()
    try:
        yield time.monotonic() - began
    finally:
        ray.shutdown()


def run_bench(workload: str, instances: int, workers: int, max_in_flight: int, *,
              baseline: bool = False, ledger: RunLedger | None = None,
              backend: str = "process") -> dict[str, Any]:
    """Run a built-in workload (results discarded; journalled by ``ledger`` if given).
    With ``backend="ray"`` and ``baseline``, the process backend runs the same workload in
    the same invocation too, for the Ray/process ratio."""
    config = RunConfig(workers=workers, max_in_flight=max_in_flight,
                       limits=LIMITS.get(workload, {}), backend=backend)
    coordinator = Coordinator(reference_of(WORKLOADS[workload]), config, NullSink(), ledger=ledger)
    with _ray_for(backend, workers) as ray_seconds, PeakRss() as rss:
        outcome = run_loop(coordinator.run(generated(instances)))
    if ledger is not None:
        ledger.close()
    stats = outcome.stats
    assert stats.ended is not None
    seconds = stats.ended - stats.ready_at
    steps = STEPS_PER_INSTANCE[workload] * instances
    report: dict[str, Any] = {
        "workload": workload, "instances": instances, "workers": workers,
        "max_in_flight": max_in_flight,
        "completed": stats.counts.get("completed", 0),
        "seconds": round(seconds, 3),
        "instances_per_second": round(instances / seconds, 1),
        "worker_cpu_us_per_step": round(outcome.worker_cpu_seconds / steps * 1e6, 2),
        "latency_ms": {f"p{q}": round(stats.latency.percentile(q), 3) for q in (50, 95, 99)},
        "peak_rss_mb": round(rss.peak / 2**20, 1),
        "worker_ready_seconds": round(stats.ready_at - stats.started, 3),
    }
    if backend != "process":
        report["backend"] = backend
        report["startup_seconds"] = round(stats.ready_at - stats.started, 3)
        if ray_seconds is not None:
            report["ray_init_seconds"] = round(ray_seconds, 3)
    lines = [
        f"{workload}: {instances:,} instances, {plural(workers, 'worker')}, {max_in_flight} in flight each"
        + (f", {backend} backend (start-up {report['startup_seconds']:.1f} s)"
           if backend != "process" else ""),
        f"  shardflow   {report['instances_per_second']:>12,.0f} instances/s  "
        f"({report['seconds']:.2f} s, peak RSS {report['peak_rss_mb']:.0f} MB, "
        f"worker CPU {report['worker_cpu_us_per_step']:.2f} us/step, "
        f"workers ready in {report['worker_ready_seconds']:.2f} s)",
        f"  latency     p50 {report['latency_ms']['p50']:.2f} ms, "
        f"p95 {report['latency_ms']['p95']:.2f} ms, p99 {report['latency_ms']['p99']:.2f} ms",
    ]
    if baseline and workload in ("forkjoin", "forkjoin-io", "linear10"):
        base_seconds = run_baseline(workload, instances, workers, max_in_flight)
        base_rate = instances / base_seconds
        overhead = max((seconds - base_seconds) * workers / steps * 1e6, 0.0)
        report["baseline_instances_per_second"] = round(base_rate, 1)
        report["ratio"] = round(report["instances_per_second"] / base_rate, 3)
        report["engine_overhead_us_per_step"] = round(overhead, 2)
        lines.append(f"  hand-written {base_rate:>11,.0f} instances/s  ({base_seconds:.2f} s)")
        lines.append(f"  ratio        {report['ratio']:.2f}  " + (
            f"(engine overhead {overhead:.2f} us per step)" if overhead else
            "(the baseline was no faster this round: noise)"))
    if backend != "process" and baseline:
        process = run_bench(workload, instances, workers, max_in_flight)
        report["process_instances_per_second"] = process["instances_per_second"]
        report["vs_process"] = round(report["instances_per_second"]
                                     / process["instances_per_second"], 3)
        lines.append(f"  process backend {process['instances_per_second']:>8,.0f} instances/s  "
                     f"(peak RSS {process['peak_rss_mb']:.0f} MB); {backend}/process "
                     f"{report['vs_process']:.2f}")
        if "limit_efficiency" in process:
            report["process_limit_efficiency"] = process["limit_efficiency"]
    if outcome.limits:
        report["limits"] = outcome.limits["limits"]
        for name, size in LIMITS[workload].items():
            ideal = size / 0.02
            achieved = instances / seconds
            report["limit_efficiency"] = round(achieved / ideal, 3)
            lines.append(f"  limit {name}={size}: {achieved:,.0f} steps/s of an ideal "
                         f"{ideal:,.0f} ({achieved / ideal:.0%})")
    report["text"] = "\n".join(lines)
    return report
