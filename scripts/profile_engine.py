"""Where the time goes per instance of the notify fork/join: the profiles in docs/PERFORMANCE.md.

Runs one subject of ``benchmarks/bench_engine.py`` (``engine``, ``runner`` or ``baseline``) on
uvloop, ``--in-flight`` instances at a time, with the default or the tuned garbage collector, and
reports one of:

* ``--tool time`` (default): CPU microseconds per instance (median of 8 rounds);
* ``--tool gc``: the same, plus the time the garbage collector took, by generation;
* ``--tool pyinstrument``: a call tree (``pip install pyinstrument``; not a dependency);
* ``--tool cprofile``: the 25 functions with the most own time.

Run: ``.venv/bin/python scripts/profile_engine.py engine --in-flight 1000 --gc tuned --tool gc``
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import bench_engine  # type: ignore[import-not-found]
from shardflow.engine.tuning import tune_gc

ROUNDS = 8


class GcTimer:
    """Wall time spent in each generation's collections, via ``gc.callbacks``."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.count = [0, 0, 0]
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds[info["generation"]] += time.perf_counter() - self._started
            self.count[info["generation"]] += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("subject", choices=list(bench_engine.SUBJECTS))
    parser.add_argument("--in-flight", type=int, default=1000)
    parser.add_argument("--gc", choices=["default", "tuned"], default="tuned")
    parser.add_argument("--tool", choices=["time", "gc", "pyinstrument", "cprofile"],
                        default="time")
    parser.add_argument("--instances", type=int, default=20_000, help="per round")
    args = parser.parse_args()

    loop = uvloop.new_event_loop()
    run_one = bench_engine.SUBJECTS[args.subject]()
    if args.gc == "tuned":
        tune_gc()
    loop.run_until_complete(bench_engine._drive(run_one, args.in_flight, args.in_flight))

    def one_round() -> None:
        loop.run_until_complete(bench_engine._drive(run_one, args.instances, args.in_flight))

    label = f"{args.subject}, {args.in_flight} in flight, gc={args.gc}"
    if args.tool == "pyinstrument":
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        profiler.start()
        one_round()
        profiler.stop()
        print(profiler.output_text(unicode=False, color=False))
        return
    if args.tool == "cprofile":
        profile = cProfile.Profile()
        profile.enable()
        one_round()
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)
        return
    timer = GcTimer()
    if args.tool == "gc":
        gc.callbacks.append(timer)
    cpu = []
    for _ in range(ROUNDS):
        started = time.process_time()
        one_round()
        cpu.append(time.process_time() - started)
    total = ROUNDS * args.instances
    per_instance = statistics.median(cpu) / args.instances * 1e6
    print(f"{label}: {per_instance:.1f} us CPU per instance (median of {ROUNDS} rounds), "
          f"{1e6 / per_instance:,.0f} instances/s")
    if args.tool == "gc":
        gc_us = sum(timer.seconds) / total * 1e6
        print(f"  garbage collector: {gc_us:.1f} us per instance "
              f"({gc_us / (sum(cpu) / total * 1e6):.0%} of the CPU time); by generation "
              + ", ".join(f"gen{g} {s / total * 1e6:.1f} us ({n} collections)"
                          for g, (s, n) in enumerate(zip(timer.seconds, timer.count, strict=True))))


if __name__ == "__main__":
    main()
