"""Instructions per unit of work, counted by valgrind's callgrind: the figure shardflow's
performance decisions are made with, because it does not drift with a shared machine's load
(wall-clock time on the 2-core CI machine moves by tens of per cent within minutes).

    python scripts/icount.py [--n 2000,6000] [--children] [--by-process] [--repeat R] \\
        [--top K] [--json] -- COMMAND ARGS...

COMMAND runs twice under callgrind, with every ``{n}`` in its arguments replaced by each N and
``{tmp}`` by a fresh scratch directory. The difference of the two totals over the difference
of the Ns is the cost of one unit: start-up, imports and everything else paid once cancel out.
``--children`` follows every process the command starts (a coordinator and its workers) and
sums them; ``--by-process`` also prints each process's own share per unit (matched by the
order the processes started). ``--top K`` lists the K functions with the most instructions
of their own in the larger run's biggest process (``callgrind_annotate``). ``--repeat R``
counts each N R times and keeps the median total (for multiprocess commands).

Every counted run has the same hash seed and reads the same bytecode: a native warm-up run
first compiles what the command imports into a private cache, which the counted runs only
read (``warm_bytecode``). So a Python command gives the same count run to run, to ~0.1 % across
environments (the size of the environment moves a count by up to ~100 instructions); a
multiprocess run moves by ~0.2 % (results arrive in frames of slightly different sizes).

Examples (docs/PERFORMANCE.md has the figures they give):
    python scripts/icount.py -- .venv/bin/python scripts/engine_instances.py engine {n}
    python scripts/icount.py --children --by-process -- .venv/bin/shardflow run \\
        shardflow.examples.notify:workflow --generate {n} --workers 1 \\
        --output {tmp}/out.jsonl --run-dir {tmp}/run --no-progress

Needs valgrind (``apt-get install valgrind``); runs 20-100x slower than native.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Count:
    """One run's instructions: the total and each process's, in the order they started."""

    n: int
    per_process: list[int]
    biggest: Path | None = None

    @property
    def total(self) -> int:
        return sum(self.per_process)


def _summary(path: Path) -> int:
    """A callgrind output file's total instructions (its ``summary:``/``totals:`` line)."""
    with open(path) as fh:
        for line in fh:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise ValueError(f"{path}: no summary line (the process died under valgrind?)")


def _pid(path: Path) -> int:
    return int(path.name.rsplit(".", 1)[1])


def _args(command: list[str], n: int, scratch: Path) -> list[str]:
    return [a.replace("{n}", str(n)).replace("{tmp}", str(scratch)) for a in command]


def warm_bytecode(command: list[str], n: int, pycache: Path) -> None:
    """Run ``command`` once natively, compiling what it imports into ``pycache``.

    Why: a run that compiles a module from source (no ``.pyc``, or a stale one after an
    edit) and writes its bytecode makes the next run cheaper by the compile. Whichever of
    the two counted runs compiled then carried millions of instructions the other did not:
    the hand-written engine baseline, counted first, read 129.9k instead of 135.0k per
    instance after ``bench_engine.py`` was touched (docs/PERFORMANCE.md). With this warm-up
    and :func:`measured_env`, both counted runs read the same complete bytecode, whatever
    state the tree's ``__pycache__`` folders are in."""
    scratch = Path(tempfile.mkdtemp(prefix="icount-warm-"))
    try:
        env = {k: v for k, v in measured_env(pycache).items()
               if k != "PYTHONDONTWRITEBYTECODE"}
        proc = subprocess.run(_args(command, n, scratch), env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, check=False)
        if proc.returncode != 0:
            sys.exit(f"icount: the command failed (exit {proc.returncode}) for n={n}:\n"
                     f"{proc.stderr[-2000:]}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def measured_env(pycache: Path) -> dict[str, str]:
    """The environment of a counted run: a fixed hash seed (str and bytes hashes, and with
    them set and dict layouts, are the same every run) and a private, read-only bytecode
    cache (``warm_bytecode`` filled it; nothing a run does changes what the next one reads).
    """
    return {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPYCACHEPREFIX": str(pycache),
            "PYTHONDONTWRITEBYTECODE": "1"}


def count(command: list[str], n: int, *, children: bool, keep: Path | None,
          pycache: Path) -> Count:
    """Run ``command`` for ``n`` under callgrind and read back every process's total."""
    scratch = Path(tempfile.mkdtemp(prefix="icount-"))
    try:
        args = _args(command, n, scratch)
        valgrind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={scratch}/cg.%p"]
        if children:
            valgrind.append("--trace-children=yes")
        proc = subprocess.run([*valgrind, *args], env=measured_env(pycache),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              check=False)
        if proc.returncode != 0:
            sys.exit(f"icount: the command failed (exit {proc.returncode}) for n={n}:\n"
                     f"{proc.stderr[-2000:]}")
        files = sorted(scratch.glob("cg.*"), key=_pid)  # pids grow: start order, mostly
        biggest = None
        if keep is not None and files:
            biggest = keep
            shutil.copy(max(files, key=lambda f: f.stat().st_size), keep)
        return Count(n, [_summary(f) for f in files], biggest)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def median_count(command: list[str], n: int, repeat: int, *, children: bool,
                 keep: Path | None, pycache: Path) -> Count:
    """The count of median total among ``repeat`` counts of ``command`` for ``n``."""
    counts = sorted((count(command, n, children=children, keep=keep, pycache=pycache)
                     for _ in range(max(repeat, 1))), key=lambda c: c.total)
    return counts[len(counts) // 2]


def top_functions(path: Path, k: int) -> str:
    """The ``k`` functions with the most self instructions, from ``callgrind_annotate``."""
    out = subprocess.run(["callgrind_annotate", "--inclusive=no", str(path)],
                         capture_output=True, text=True, check=False).stdout
    lines = [line for line in out.splitlines() if line.strip()]
    start = next((i for i, line in enumerate(lines) if "file:function" in line), 0)
    return "\n".join(lines[start:start + k + 1])


def main() -> None:
    parser = argparse.ArgumentParser(usage=__doc__)
    parser.add_argument("--n", default="2000,6000", help="two unit counts (default 2000,6000)")
    parser.add_argument("--children", action="store_true", help="count every child process too")
    parser.add_argument("--by-process", action="store_true",
                        help="also each process's instructions per unit (with --children)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="count each N this many times and take the median total (a "
                             "multiprocess count moves with the processes' timing)")
    parser.add_argument("--top", type=int, default=0, help="print the top K functions")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given (put it after --)")
    if shutil.which("valgrind") is None:
        sys.exit("icount: valgrind is not installed (apt-get install valgrind)")
    small, large = (int(x) for x in args.n.split(","))
    if large <= small:
        parser.error("--n takes two counts, the second larger")
    keep = Path(tempfile.mkstemp(prefix="icount-top-")[1]) if args.top else None
    pycache = Path(tempfile.mkdtemp(prefix="icount-pycache-"))
    try:
        warm_bytecode(command, small, pycache)
        first = median_count(command, small, args.repeat, children=args.children,
                             keep=None, pycache=pycache)
        second = median_count(command, large, args.repeat, children=args.children,
                              keep=keep, pycache=pycache)
        per_unit = (second.total - first.total) / (large - small)
        report: dict[str, object] = {"n": [small, large], "totals": [first.total, second.total],
                                     "per_unit": round(per_unit)}
        if args.by_process and len(first.per_process) == len(second.per_process):
            report["per_unit_by_process"] = [
                round((b - a) / (large - small))
                for a, b in zip(first.per_process, second.per_process, strict=True)]
        if args.json:
            print(json.dumps(report))
        else:
            print(f"n={small}: {first.total:,} instructions; n={large}: {second.total:,}")
            print(f"{per_unit:,.0f} instructions per unit")
            if "per_unit_by_process" in report:
                shares = ", ".join(f"{v:,}" for v in report["per_unit_by_process"])  # type: ignore[attr-defined]
                print(f"by process, in start order: {shares}")
        if keep is not None and second.biggest is not None:
            print(top_functions(second.biggest, args.top))
    finally:
        shutil.rmtree(pycache, ignore_errors=True)
        if keep is not None:
            keep.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
