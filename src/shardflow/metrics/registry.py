"""The metrics a shardflow process exports, in a registry of its own (never the process-wide
default one, so two consumers in one process, or a host application's own metrics, do not
collide).

Figures the pool keeps itself (step timings from the workers' STATS frames, worker restarts,
instances in flight) are read when Prometheus scrapes, by a collector, instead of being
copied on every change: nothing on the hot path pays for a metric nobody reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from shardflow.engine.results import LABELS
from shardflow.engine.rows import ResultRow

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                     10.0, 30.0, 60.0, 300.0)


class PoolFigures(Protocol):
    """What the collector reads of a pool (``WorkerPool`` has it)."""

    step_stats: dict[tuple[int, int], dict[str, list[float]]]
    restarts: int

    @property
    def in_flight(self) -> int: ...

    @property
    def error(self) -> BaseException | None: ...


class Metrics:
    """Counters the caller updates, plus the figures of the pool it is attached to."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.instances = Counter("shardflow_instances", "Instances finished, by status.",
                                 ["status"], registry=self.registry)
        self.instance_seconds = Histogram(
            "shardflow_instance_duration_seconds", "Duration of each finished instance.",
            buckets=_DURATION_BUCKETS, registry=self.registry)
        self.redeliveries = Counter("shardflow_redeliveries", "Messages taken over from a "
                                    "consumer that did not acknowledge them.",
                                    registry=self.registry)
        self.dead_letters = Counter("shardflow_dead_letters", "Messages moved to the dead-letter "
                                    "stream after too many deliveries.", registry=self.registry)
        self.reconnects = Counter("shardflow_broker_reconnects", "Times the broker connection "
                                  "came back after it was lost.", registry=self.registry)
        self._pool = _PoolCollector()
        self.registry.register(self._pool)
        for label in LABELS:  # every status appears from the start, at 0
            self.instances.labels(label)

    def attach(self, pool: PoolFigures | None) -> None:
        """Read in-flight, restarts and step timings from ``pool`` from now on."""
        self._pool.pool = pool

    def workers_health(self) -> str | None:
        """``None`` while the attached pool runs (it replaces a worker that dies, and stops
        only when it cannot), else why not: the health of ``shardflow run``."""
        pool = self._pool.pool
        if pool is None:
            return "no worker pool is running"
        if pool.error is not None:
            return f"workers stopped: {pool.error}"
        return None

    def count_results(self, rows: list[ResultRow]) -> None:
        """A batch of result rows (``engine/rows.py``'s ``ResultRow``)."""
        by_status: dict[int, int] = {}
        observe = self.instance_seconds.observe
        for row in rows:
            by_status[row[1]] = by_status.get(row[1], 0) + 1
            if row[2]:
                observe(row[2] / 1000.0)
        for code, count in by_status.items():
            self.instances.labels(LABELS[code]).inc(count)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _PoolCollector(Collector):
    def __init__(self) -> None:
        self.pool: PoolFigures | None = None

    def describe(self) -> list[Any]:
        return []  # figures appear once a pool is attached

    def collect(self) -> Iterator[Any]:
        pool = self.pool
        in_flight = GaugeMetricFamily("shardflow_in_flight", "Instances running in the workers.")
        in_flight.add_metric([], pool.in_flight if pool is not None else 0)
        yield in_flight
        restarts = CounterMetricFamily("shardflow_worker_restarts",
                                       "Worker processes replaced after they died.")
        restarts.add_metric([], pool.restarts if pool is not None else 0)
        yield restarts
        yield _step_histogram(pool.step_stats if pool is not None else {})


def _step_histogram(step_stats: Mapping[Any, Mapping[str, list[float]]]) -> HistogramMetricFamily:
    """Step executions as a histogram with the one bucket the workers' cumulative STATS
    (executions, total and longest ms per step, sent with every heartbeat) allow: ``+Inf``,
    with exact ``_count`` and ``_sum``, so ``rate(_sum) / rate(_count)`` is the mean."""
    merged: dict[str, list[float]] = {}
    for per_worker in step_stats.values():
        for step, values in per_worker.items():
            row = merged.setdefault(step, [0.0, 0.0])
            row[0] += values[0]
            row[1] += values[1]
    family = HistogramMetricFamily("shardflow_step_duration_seconds",
                                   "Step execution time (waits for limits excluded).",
                                   labels=["step"])
    for step, (count, total_ms) in sorted(merged.items()):
        family.add_metric([step], [("+Inf", count)], sum_value=total_ms / 1000.0)
    return family


HealthCheck = Callable[[], str | None]
"""``None`` when healthy, else why not (the body of the 503)."""
