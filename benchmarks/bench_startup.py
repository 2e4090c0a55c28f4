"""Start-up (issue 11): what ``import shardflow`` loads, and a 1-instance ``shardflow run``.

Run: ``.venv/bin/python -m pytest benchmarks/bench_startup.py -s``. Imports a run does not use
cost every worker their time again (jsonschema alone was ~120 ms), so the library import must
leave the optional and heavy layers alone; the whole 1-instance run (coordinator, one worker,
journal, output) must take under half a second.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
NOT_FOR_THE_LIBRARY = ("rich", "jsonschema", "click", "uvloop", "shardflow.batch", "shardflow.cli",
                       "shardflow.web", "shardflow.bench", "shardflow.run")


def _python(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], env=ENV, capture_output=True, text=True,
                          check=True)


def test_import_shardflow_loads_nothing_a_run_does_not_use() -> None:
    code = ("import sys, shardflow; print('\\n'.join(sorted(m for m in sys.modules if m in "
            f"{NOT_FOR_THE_LIBRARY!r} or m.startswith(tuple(n + '.' for n in "
            f"{NOT_FOR_THE_LIBRARY!r})))))")
    loaded = _python("-c", code).stdout.split()
    total = _python("-X", "importtime", "-c", "import shardflow").stderr.splitlines()[-1]
    print(f"\n{total.strip()}")
    assert loaded == [], loaded


def test_one_instance_run_under_half_a_second(tmp_path: Path) -> None:
    """Timed as an installed package runs: with compiled bytecode (a warm-up run writes it
    to a scratch cache), never compiling every module from source."""
    shardflow = str(Path(sys.executable).with_name("shardflow"))
    env = {k: v for k, v in ENV.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(tmp_path / "pycache")
    seconds = []
    for i in range(4):
        started = time.perf_counter()
        subprocess.run([shardflow, "run", "shardflow.examples.notify:workflow", "--generate", "1",
                        "--workers", "1", "--output", str(tmp_path / f"out{i}.jsonl"),
                        "--run-dir", str(tmp_path / f"run{i}"), "--no-progress"],
                       env=env, capture_output=True, check=True)
        seconds.append(time.perf_counter() - started)
        assert b'"completed"' in (tmp_path / f"out{i}.jsonl").read_bytes()
    seconds = seconds[1:]  # the first run compiled the bytecode
    print(f"\n1-instance shardflow run: {', '.join(f'{s:.2f}' for s in seconds)} s")
    assert statistics.median(seconds) < 0.5
