"""``shardflow runs list`` and ``runs prune``: see the run directories, remove old ones, never
one that a live process holds."""

from __future__ import annotations

import time
from pathlib import Path

import orjson

from shardflow.run.lock import RunLock
from support.e2e import CliRun
from support.runs import run_flow

DAY = 86400.0


def _runs(cli: CliRun, count: int) -> list[Path]:
    for _ in range(count):
        proc = cli("run", run_flow("effect"), "--generate", "3", "--workers", "1",
                   "--no-progress", "--output", "out.jsonl")
        assert proc.returncode == 0, proc.stderr
    return sorted((Path(".shardflow") / "runs").iterdir())


def _age(run_dir: Path, days: float) -> None:
    file = run_dir / "run.json"
    record = orjson.loads(file.read_bytes())
    record["started_at"] = time.time() - days * DAY
    file.write_bytes(orjson.dumps(record))


def test_runs_list_shows_id_status_counts_and_size(cli: CliRun, test_dir: Path) -> None:
    (done,) = _runs(cli, 1)
    proc = cli("runs", "list")
    assert proc.returncode == 0, proc.stderr
    header, row = proc.stdout.splitlines()
    assert header.split() == ["RUN", "WORKFLOW", "STATUS", "COUNTS", "OUTPUT", "AGE", "SIZE"]
    assert row.startswith(done.name) and "finished" in row and "completed 3" in row
    listed = orjson.loads(cli("runs", "list", "--json").stdout)
    assert listed["status"] == "finished" and listed["counts"] == {"completed": 3}
    assert listed["size"] > 0


def test_prune_removes_old_runs_keeps_new_and_held_ones(cli: CliRun, test_dir: Path) -> None:
    old, held, new = _runs(cli, 3)
    _age(old, 10)
    _age(held, 9)
    lock = RunLock(held).acquire()  # a live process works on it
    try:
        assert "running" in cli("runs", "list").stdout
        proc = cli("runs", "prune", "--older-than", "7d")
        assert proc.returncode == 0, proc.stderr
        assert "1 run removed" in proc.stdout
        assert not old.exists() and held.exists() and new.exists()
    finally:
        lock.release()
    _age(new, 8)
    kept = cli("runs", "prune", "--older-than", "7d", "--keep", "1")
    assert kept.returncode == 0 and "1 run removed" in kept.stdout
    assert new.exists() and not held.exists()


def test_a_bad_age_is_one_line(cli: CliRun, test_dir: Path) -> None:
    proc = cli("runs", "prune", "--older-than", "a week")
    assert proc.returncode == 2 and "'a week' is not an age" in proc.stderr
