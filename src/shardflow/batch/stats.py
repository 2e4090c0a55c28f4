"""Run statistics in bounded memory: counts by status, a latency histogram, step timings,
failures by step and error type."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from itertools import repeat
from operator import itemgetter, truediv
from typing import Any

from shardflow._text import plural
from shardflow.batch.failure_digest import FailureDigest
from shardflow.engine.results import LABELS, Status
from shardflow.engine.rows import ResultRow

_GROWTH = 1.02  # histogram buckets 2 % wide: percentiles within 1 %, ~700 buckets up to 1 h
_LOG = math.log(_GROWTH)
_FLOOR = _GROWTH ** -400.5
"""Durations below this (~0.35 us) share the lowest bucket, -400."""
_CODE = itemgetter(1)
_DURATION = itemgetter(2)
_FAILED, _INVALID = int(Status.FAILED), int(Status.INVALID_INPUT)
_BAD_CODES = (_FAILED, _INVALID)
_BAD_LABELS = (LABELS[_FAILED], LABELS[_INVALID])


class LatencyHistogram:
    """Log-bucketed durations (ms): constant memory whatever the instance count."""

    __slots__ = ("buckets", "count", "max")

    def __init__(self) -> None:
        self.buckets: Counter[int] = Counter()
        self.count = 0
        self.max = 0.0

    def add(self, ms: float) -> None:
        self.buckets[int(math.log(max(ms, _FLOOR)) / _LOG)] += 1
        self.count += 1
        if ms > self.max:
            self.max = ms

    def add_many(self, durations: list[float]) -> None:
        """``add`` each of ``durations`` (all > 0), without a Python loop: the coordinator
        calls it once per frame of results, for every instance of a run."""
        if not durations:
            return
        self.buckets.update(map(int, map(truediv, map(math.log, map(max, durations,
                                                                    repeat(_FLOOR))),
                                         repeat(_LOG))))
        self.count += len(durations)
        peak = max(durations)
        if peak > self.max:
            self.max = peak

    def percentile(self, q: float) -> float:
        if not self.count:
            return 0.0
        rank = q / 100.0 * self.count
        seen = 0
        for bucket in sorted(self.buckets):
            seen += self.buckets[bucket]
            if seen >= rank:
                return float(min(_GROWTH ** (bucket + 0.5), self.max))
        return self.max


class RunStats:
    """What the summary reports. Fed by the coordinator, one call per result."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.ready_at = self.started
        """When every worker had loaded the workflow (benchmarks time from here)."""
        self.ended: float | None = None
        self.counts: Counter[str] = Counter()
        self.latency = LatencyHistogram()
        self.steps: dict[str, list[float]] = {}
        """step -> [executions, execution ms, max ms, ms waiting for limits, retries]"""
        self.failures: dict[str, Counter[str]] = {}
        """step -> error type -> failed instances"""
        self.examples = FailureDigest()
        """Messages and example ids of the failed and invalid instances."""

    def _bad(self) -> int:
        counts = self.counts
        return counts[_BAD_LABELS[0]] + counts[_BAD_LABELS[1]]

    def add(self, status: int, duration_ms: float, line: bytes = b"") -> None:
        self.counts[LABELS[status]] += 1
        if duration_ms > 0:
            self.latency.add(duration_ms)
        if status in _BAD_CODES and line:
            self.examples.add_line(line)

    def add_batch(self, header: list[ResultRow], lines: list[bytes] | None = None) -> None:
        """A worker's result header rows: ``[seq, status code, duration ms, length]``, and
        their result lines (only failed and invalid ones are read, for the examples)."""
        bad = self._bad()
        self.counts.update(map(LABELS.__getitem__, map(_CODE, header)))
        self.latency.add_many(list(filter(None, map(_DURATION, header))))
        if lines is not None and self._bad() != bad:
            for row, line in zip(header, lines, strict=True):
                if row[1] in _BAD_CODES:
                    self.examples.add_line(line)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def elapsed(self) -> float:
        return (self.ended or time.monotonic()) - self.started

    def finish(self, step_stats: Mapping[Any, Mapping[str, list[float]]],
               failures: Iterable[Mapping[str, Mapping[str, int]]] = (),
               given_up: Mapping[tuple[str, str], int] | None = None) -> None:
        """Merge what the workers reported (their last STATS frame each): step timings and
        failures, plus the failures the pool made itself (``given_up``: (step, type) -> n)."""
        self.ended = time.monotonic()
        merged: dict[str, list[float]] = {}
        for per_worker in step_stats.values():
            for node, values in per_worker.items():
                count, total, peak, waited, retries = values
                stat = merged.setdefault(node, [0, 0.0, 0.0, 0.0, 0])
                stat[0] += count
                stat[1] += total
                stat[2] = max(stat[2], peak)
                stat[3] += waited
                stat[4] += retries
        self.steps = merged
        by_step: dict[str, Counter[str]] = {}
        for report in failures:
            for step, types in report.items():
                by_step.setdefault(step, Counter()).update(types)
        for (step, error_type), count in (given_up or {}).items():
            by_step.setdefault(step, Counter())[error_type] += count
        self.failures = by_step

    def step_summary(self) -> dict[str, dict[str, Any]]:
        """Per step: executions (attempts included), retries, mean and max execution time,
        and the time spent waiting for a limit or rate slot (not part of execution)."""
        return {node: {"executions": int(c), "retries": int(r),
                       "mean_ms": round(t / c, 3) if c else 0.0, "max_ms": round(m, 3),
                       "waiting_ms": round(w, 3), "mean_wait_ms": round(w / c, 3) if c else 0.0}
                for node, (c, t, m, w, r) in sorted(self.steps.items())}

    def to_dict(self) -> dict[str, Any]:
        elapsed = self.elapsed
        steps = self.step_summary()
        slowest = sorted(({"step": node, **s} for node, s in steps.items()), key=lambda s: -s["mean_ms"])
        return {
            "total": self.total,
            "counts": dict(self.counts),
            "elapsed_seconds": round(elapsed, 3),
            "instances_per_second": round(self.total / elapsed, 1) if elapsed > 0 else 0.0,
            "latency_ms": {f"p{q}": round(self.latency.percentile(q), 3) for q in (50, 95, 99)},
            "slowest_steps": slowest[:5],
            "steps": steps,
            "failures": {step: dict(types.most_common()) for step, types in sorted(self.failures.items())},
            "failure_examples": self.examples.to_list(),
        }

    def render(self) -> str:
        d = self.to_dict()
        counts = ", ".join(f"{k} {v}" for k, v in sorted(d["counts"].items())) or "nothing"
        lat = d["latency_ms"]
        lines = [
            f"shardflow: {plural(d['total'], 'instance')} in {d['elapsed_seconds']:.2f} s "
            f"({d['instances_per_second']:,.0f}/s): {counts}",
            f"  latency p50 {lat['p50']:.2f} ms, p95 {lat['p95']:.2f} ms, p99 {lat['p99']:.2f} ms",
        ]
        if d["slowest_steps"]:
            slow = ", ".join(f"{s['step']} {s['mean_ms']:.3f} ms" for s in d["slowest_steps"][:3])
            lines.append(f"  slowest steps (mean execution): {slow}")
        waits = [(n, s) for n, s in d["steps"].items() if s["waiting_ms"] > 0]
        if waits:
            lines.append("  waiting for limits (mean per execution, not counted as execution): " + ", ".join(
                f"{n} {s['mean_wait_ms']:.3f} ms" for n, s in waits))
        retried = [(n, s["retries"]) for n, s in d["steps"].items() if s["retries"]]
        if retried:
            lines.append("  retries: " + ", ".join(f"{n} {r}" for n, r in retried))
        for step, types in d["failures"].items():
            lines.append(f"  failed at {step}: " + ", ".join(f"{t} {n}" for t, n in types.items()))
        if self.examples:
            lines.append("  most common failures (step, error, count: message, example ids):")
            lines += self.examples.render()
        return "\n".join(lines)
