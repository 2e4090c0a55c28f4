"""Run N notify fork/join instances of one subject of ``benchmarks/bench_engine.py``, for
``icount`` (callgrind): instructions per instance, a figure that does not drift with the load.

Run: ``python scripts/icount.py -- .venv/bin/python scripts/engine_instances.py runner {n}``
(subjects: ``engine``, ``runner``, ``baseline``; 1,000 in flight and the tuned collector
unless ``--in-flight`` or ``--gc default`` say otherwise; ``--interpreted`` runs the plan on
the interpreter instead of its compiled schedule).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import bench_engine  # type: ignore[import-not-found]
from shardflow.engine.tuning import tune_gc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("subject", choices=list(bench_engine.SUBJECTS))
    parser.add_argument("instances", type=int)
    parser.add_argument("--in-flight", type=int, default=1000)
    parser.add_argument("--gc", choices=bench_engine.GC_MODES, default="tuned",
                        help="the interpreter's default collector, or tuned as workers tune it")
    parser.add_argument("--interpreted", action="store_true",
                        help="run the plan on the interpreter, not as its compiled schedule")
    args = parser.parse_args()
    if args.interpreted:
        from shardflow.engine import interpreter

        interpreter.schedule_for = lambda plan, variant: None  # type: ignore[assignment]
    loop = uvloop.new_event_loop()
    run_one = bench_engine.SUBJECTS[args.subject]()
    if args.gc == "tuned":
        tune_gc()
    last = loop.run_until_complete(bench_engine._drive(run_one, args.instances, args.in_flight))
    bench_engine._check(args.subject, last)


if __name__ == "__main__":
    main()
