"""Run the hand-written batch baseline (``shardflow.bench.baseline``) on N forkjoin instances,
for ``icount --children``: its instructions per instance over all processes, the figure
``shardflow run`` JSONL->JSONL is compared with (docs/PERFORMANCE.md).

Run: ``python scripts/icount.py --children -- .venv/bin/python scripts/batch_baseline.py {n}``
"""

from __future__ import annotations

import argparse

from shardflow.bench.baseline import run_baseline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("instances", type=int)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--in-flight", type=int, default=1000)
    args = parser.parse_args()
    run_baseline("forkjoin", args.instances, args.workers, args.in_flight)


if __name__ == "__main__":
    main()
