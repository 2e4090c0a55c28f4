"""``shardflow bench`` over several rounds: the median and its spread, not one noisy figure.

One round of a batch benchmark on a shared or busy machine can be off by half (four single
rounds of the same ratio gave 0.66, 0.50, 0.83 and 1.02). Each round measures shardflow and,
with ``--baseline``, the hand-written baseline right after it, so every round's ratio
compares two runs seconds apart; the report gives the median of the rounds' figures with
the lowest and highest beside it. ``bench TARGET`` measures the user's own workflow the same
way, over generated inputs or an input file.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterator
from typing import Any

from shardflow._loop import run as run_loop
from shardflow._text import plural
from shardflow.batch.config import RunConfig
from shardflow.batch.coordinator import Coordinator
from shardflow.batch.sinks import NullSink
from shardflow.batch.sources import Item
from shardflow.bench.runner import PeakRss, run_bench


def spread(values: list[float]) -> dict[str, float]:
    """Median, lowest, highest, and the range as a share of the median."""
    median = statistics.median(values)
    low, high = min(values), max(values)
    return {"median": round(median, 3), "min": round(low, 3), "max": round(high, 3),
            "spread": round((high - low) / median, 3) if median else 0.0}


def _shown(figure: dict[str, float], fmt: str, unit: str = "") -> str:
    """``39,380 instances/s (median; lowest 16,536, highest 49,388)``."""
    return (f"{format(figure['median'], fmt)}{unit} (median; lowest {format(figure['min'], fmt)}, "
            f"highest {format(figure['max'], fmt)})")


def workload_rounds(workload: str, instances: int, workers: int, max_in_flight: int, *,
                    rounds: int, baseline: bool, backend: str = "process") -> dict[str, Any]:
    """A built-in workload, ``rounds`` times (each with its baseline when asked)."""
    reports = [run_bench(workload, instances, workers, max_in_flight, baseline=baseline,
                         backend=backend) for _ in range(rounds)]
    result: dict[str, Any] = {"workload": workload, "instances": instances, "workers": workers,
                              "max_in_flight": max_in_flight, "rounds": reports}
    rates = spread([r["instances_per_second"] for r in reports])
    result["instances_per_second"] = rates
    lines = [reports[0]["text"].splitlines()[0] + f", {rounds} rounds",
             f"  shardflow    {_shown(rates, ',.0f', ' instances/s')}"]
    if "ratio" in reports[0]:
        base = spread([r["baseline_instances_per_second"] for r in reports])
        ratios = spread([r["ratio"] for r in reports])
        result["baseline_instances_per_second"] = base
        result["ratio"] = ratios
        lines.append(f"  hand-written {_shown(base, ',.0f', ' instances/s')}")
        lines.append(f"  ratio        {_shown(ratios, '.2f')}, each round's pair run seconds apart")
        if ratios["spread"] > 0.25:
            lines.append("  the rounds disagree by more than 25 %: the machine was busy; "
                         "more rounds (--rounds) or a quieter moment give a steadier median")
    if "limit_efficiency" in reports[0]:
        efficiency = spread([r["limit_efficiency"] for r in reports])
        result["limit_efficiency"] = efficiency
        lines.append(f"  limit        {_shown(efficiency, '.0%', ' of the ideal rate')}")
    median_round = min(reports, key=lambda r: abs(r["instances_per_second"] - rates["median"]))
    lines.append(f"  median round: latency p50 {median_round['latency_ms']['p50']:.2f} ms, "
                 f"p99 {median_round['latency_ms']['p99']:.2f} ms, peak RSS "
                 f"{median_round['peak_rss_mb']:.0f} MB")
    result["text"] = "\n".join(lines)
    return result


def target_rounds(target: str, items: Callable[[], Iterator[Item]], config: RunConfig, *,
                  rounds: int, source: str) -> dict[str, Any]:
    """The user's workflow ``target`` over ``items()`` (made again each round), results
    discarded: instances/s from the moment every worker is ready, with the spread."""
    reports = []
    for _ in range(rounds):
        coordinator = Coordinator(target, config, NullSink(), source_name=source)
        with PeakRss() as rss:
            outcome = run_loop(coordinator.run(items()))
        stats = outcome.stats
        assert stats.ended is not None
        seconds = max(stats.ended - stats.ready_at, 1e-9)
        reports.append({"instances": stats.total, "counts": dict(stats.counts),
                        "seconds": round(seconds, 3),
                        "instances_per_second": round(stats.total / seconds, 1),
                        "latency_ms": {f"p{q}": round(stats.latency.percentile(q), 3)
                                       for q in (50, 95, 99)},
                        "peak_rss_mb": round(rss.peak / 2**20, 1),
                        "slowest_steps": stats.to_dict()["slowest_steps"][:3]})
    rates = spread([r["instances_per_second"] for r in reports])
    median_round = min(reports, key=lambda r: abs(r["instances_per_second"] - rates["median"]))
    counts = ", ".join(f"{k} {v}" for k, v in sorted(median_round["counts"].items()))
    slow = ", ".join(f"{s['step']} {s['mean_ms']:.3f} ms" for s in median_round["slowest_steps"])
    lines = [f"{target}: {median_round['instances']:,} instances from {source}, "
             f"{plural(config.workers, 'worker')}, {config.max_in_flight} in flight each, {rounds} rounds",
             f"  shardflow    {_shown(rates, ',.0f', ' instances/s')}",
             f"  median round: {counts}; latency p50 {median_round['latency_ms']['p50']:.2f} ms, "
             f"p99 {median_round['latency_ms']['p99']:.2f} ms, peak RSS "
             f"{median_round['peak_rss_mb']:.0f} MB",
             f"  slowest steps (mean execution): {slow or '-'}"]
    return {"target": target, "rounds": reports, "instances_per_second": rates,
            "workers": config.workers, "max_in_flight": config.max_in_flight,
            "text": "\n".join(lines)}
