"""Issue 11's targets as CPU instruction ratios: figures that do not drift with the machine.

Run: ``.venv/bin/python -m pytest benchmarks/bench_instructions.py -s`` (needs valgrind; each
test runs its commands under callgrind twice, a few minutes in all). Every test uses the
project's ``scripts/icount.py`` (or ``$ICOUNT``): the instructions of a run with N2 units minus
those with N1, divided by N2 - N1, so start-up and imports cancel out. Skipped, with the
reason, where valgrind is missing.

* engine: the notify fork/join in process, hand-written / ``LocalExecutionEngine`` >= 0.72
  (issue 19: the refactor of the instance core keeps it there);
* batch: ``shardflow run`` JSONL -> JSONL on one worker against the hand-written
  multiprocessing baseline, summed over every process, >= 0.70;
* journal: what the journal adds to a ``shardflow run`` instance, <= 5 %.

A count does not depend on the state of the tree's bytecode caches: icount compiles what the
command imports once, natively, and both counted runs read that (``test_icount_...``, below).
A multiprocess count moves with the workers' timing (frame sizes), so the batch ratio is the
median of ``BATCH_REPEATS`` counts of each side (docs/PERFORMANCE.md has the spreads).

The wall-clock counterparts (``bench_engine.py``, ``bench_batch.py``) confirm them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ICOUNT = os.environ.get("ICOUNT", str(ROOT / "scripts" / "icount.py"))
PYTHON = sys.executable
SHARDFLOW = str(Path(PYTHON).with_name("shardflow"))
ENGINE_TARGET = 0.72
BATCH_TARGET = 0.70
JOURNAL_TARGET = 0.05
BATCH_REPEATS = 3

pytestmark = [
    pytest.mark.skipif(
        shutil.which("valgrind") is None or not Path(ICOUNT).exists(),
        reason="needs valgrind (apt-get install -y valgrind)",
    ),
    # Several callgrind runs a test, 20-100x slower than native: the suite's 120 s per test
    # (pyproject.toml) cut the batch tests off on a slow afternoon.
    pytest.mark.timeout(1200),
]


def per_unit(*cmd: str, children: bool = False, n: str = "1000,3000", repeat: int = 1,
             env: dict[str, str] | None = None) -> float:
    """Instructions per unit of ``cmd`` (``{n}`` and ``{tmp}`` as icount replaces them); the
    median of ``repeat`` counts."""
    args = [PYTHON, ICOUNT, "--n", n, "--repeat", str(repeat),
            *(["--children"] if children else []), "--", *cmd]
    env = dict(env or os.environ, PYTHONPATH=str(ROOT / "src"))
    out = subprocess.run(args, env=env, capture_output=True, text=True, check=True).stdout
    found = re.search(r"([\d,]+) instructions per unit", out)
    assert found is not None, out
    return float(found.group(1).replace(",", ""))


def _run(*extra: str) -> list[str]:
    return [SHARDFLOW, "run", "shardflow.examples.notify:workflow", "--generate", "{n}",
            "--workers", "1", "--output", "{tmp}/out.jsonl", "--run-dir", "{tmp}/run",
            "--no-progress", *extra]


def test_engine_instructions_ratio() -> None:
    script = str(ROOT / "scripts" / "engine_instances.py")
    hand = per_unit(PYTHON, script, "baseline", "{n}")
    engine = per_unit(PYTHON, script, "engine", "{n}")
    print(f"\nengine: hand-written {hand:,.0f}, engine {engine:,.0f} instructions per instance:"
          f" ratio {hand / engine:.3f}")
    assert hand / engine >= ENGINE_TARGET


def test_batch_instructions_ratio() -> None:
    hand = per_unit(PYTHON, str(ROOT / "scripts" / "batch_baseline.py"), "{n}",
                    children=True, n="2000,6000", repeat=BATCH_REPEATS)
    batch = per_unit(*_run(), children=True, n="2000,6000", repeat=BATCH_REPEATS)
    print(f"\nbatch: hand-written {hand:,.0f}, shardflow run {batch:,.0f} instructions per "
          f"instance (all processes): ratio {hand / batch:.3f}")
    assert hand / batch >= BATCH_TARGET


def test_journal_instructions_share() -> None:
    plain = per_unit(*_run("--no-journal"), children=True, n="2000,6000")
    journalled = per_unit(*_run(), children=True, n="2000,6000")
    share = 1 - plain / journalled
    print(f"\njournal: {plain:,.0f} without, {journalled:,.0f} with: {share:.1%} of an instance")
    assert share <= JOURNAL_TARGET


def test_icount_ignores_the_bytecode_cache(tmp_path: Path) -> None:
    """A module without bytecode (a fresh tree, or one just edited) is compiled by whichever
    run imports it first: counted, that compile made the hand-written engine baseline read
    129.9k instead of 135.0k per instance. The count of a loop that imports such a module
    must be the loop's alone, wherever its bytecode stands."""
    module = tmp_path / "big_module.py"
    module.write_text("".join(f"def f{i}(x):\n    return x + {i}\n" for i in range(3000)))
    loop = (f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import big_module; "
            "[big_module.f1(i) for i in range(int(sys.argv[1]))]")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    counts = [per_unit(PYTHON, "-c", loop, "{n}", n="2000,6000", env=env) for _ in range(2)]
    print(f"\nicount: a loop importing an uncompiled module: {counts} per unit")
    assert (tmp_path / "__pycache__").exists() is False  # nothing written into the tree
    assert all(0 < count < 5000 for count in counts), counts
    assert counts[0] == counts[1]
