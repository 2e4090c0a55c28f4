"""Nothing lost: a killed or interrupted coordinator resumes from its journal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from support.e2e import CliRun, by_id, flow, read_results, write_jsonl

N = 4000


def _start(args: list[str], test_dir: Path, pause_at: int) -> subprocess.Popen[str]:
    env = {**os.environ, "SHARDFLOW_TEST_DIR": str(test_dir), "SHARDFLOW_PAUSE_AT": str(pause_at)}
    return subprocess.Popen([sys.executable, "-m", "shardflow", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait_for_pause(test_dir: Path) -> None:
    """Blocks until the paused instance writes to the FIFO (an event, not a timer)."""
    with open(test_dir / "pause.fifo") as fifo:
        assert fifo.read().strip().isdigit()


def _essentials(results: dict[Any, dict[str, Any]]) -> dict[Any, tuple[str, Any]]:
    return {i: (r["status"], r["context"]) for i, r in results.items()}


@pytest.fixture
def reference(cli: CliRun, tmp_path: Path) -> dict[Any, tuple[str, Any]]:
    """An uninterrupted run of the same input."""
    inp = write_jsonl(tmp_path / "in.jsonl", ({"id": i, "value": i} for i in range(N)))
    out = tmp_path / "reference.jsonl"
    proc = cli("run", flow("echo"), "--input", str(inp), "--output", str(out), "--workers", "2",
               "--no-journal")
    assert proc.returncode == 0, proc.stderr
    return _essentials(by_id(read_results(out)))


@pytest.mark.parametrize("pause_at", [20, N // 2, N - 5], ids=["early", "middle", "last"])
def test_sigkill_of_the_coordinator_then_resume(
    cli: CliRun, test_dir: Path, tmp_path: Path, reference: dict[Any, Any], pause_at: int
) -> None:
    os.mkfifo(test_dir / "pause.fifo")
    inp = tmp_path / "in.jsonl"
    out = tmp_path / "out.jsonl"
    run_dir = tmp_path / "run"
    proc = _start(["run", flow("pausable"), "--input", str(inp), "--output", str(out),
                   "--workers", "2", "--max-in-flight", "100", "--run-dir", str(run_dir)],
                  test_dir, pause_at)
    _wait_for_pause(test_dir)
    proc.kill()
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    resumed = cli("resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr
    assert "already done" in resumed.stderr
    results = by_id(read_results(out))
    assert _essentials(results) == reference
    again = cli("resume", str(run_dir))
    assert again.returncode == 0 and "already finished" in again.stderr
    assert len(read_results(out)) == N


def test_torn_journal_line_is_ignored_on_resume(cli: CliRun, tmp_path: Path,
                                                reference: dict[Any, Any]) -> None:
    inp = tmp_path / "in.jsonl"
    out = tmp_path / "out.jsonl"
    run_dir = tmp_path / "run"
    proc = cli("run", flow("echo"), "--input", str(inp), "--output", str(out), "--workers", "2",
               "--run-dir", str(run_dir))
    assert proc.returncode == 0, proc.stderr
    journal = run_dir / "journal.jsonl"
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(b"".join(lines[:-10]) + lines[-10][: len(lines[-10]) // 2])
    record = orjson.loads((run_dir / "run.json").read_bytes())
    record["finished"] = False  # as if the coordinator died while writing that line
    (run_dir / "run.json").write_bytes(orjson.dumps(record))
    resumed = cli("resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr
    assert f"{N - 10} instances already done" in resumed.stderr
    assert _essentials(by_id(read_results(out))) == reference
    assert all(line.endswith(b"\n") for line in journal.read_bytes().splitlines(keepends=True))


def test_sigint_finishes_in_flight_work_then_resume(
    cli: CliRun, test_dir: Path, tmp_path: Path, reference: dict[Any, Any]
) -> None:
    os.mkfifo(test_dir / "pause.fifo")
    inp = tmp_path / "in.jsonl"
    out = tmp_path / "out.jsonl"
    run_dir = tmp_path / "run"
    proc = _start(["run", flow("pausable"), "--input", str(inp), "--output", str(out),
                   "--workers", "2", "--max-in-flight", "100", "--run-dir", str(run_dir),
                   "--grace-seconds", "1"], test_dir, 1000)
    _wait_for_pause(test_dir)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and f"shardflow resume {run_dir}" in stderr
    partial = by_id(read_results(out))
    assert 1000 not in partial  # the paused instance never finished: it is not in the output
    assert len(partial) > 1000 - 200  # what was in flight finished within the grace period
    resumed = cli("resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr
    assert _essentials(by_id(read_results(out))) == reference


def test_second_sigint_stops_at_once(cli: CliRun, test_dir: Path, tmp_path: Path,
                                     reference: dict[Any, Any]) -> None:
    os.mkfifo(test_dir / "pause.fifo")
    inp = tmp_path / "in.jsonl"
    out = tmp_path / "out.jsonl"
    run_dir = tmp_path / "run"
    proc = _start(["run", flow("pausable"), "--input", str(inp), "--output", str(out),
                   "--workers", "2", "--run-dir", str(run_dir), "--grace-seconds", "600"],
                  test_dir, 500)
    _wait_for_pause(test_dir)
    proc.send_signal(signal.SIGINT)
    assert proc.stderr is not None
    for line in proc.stderr:  # wait until the first interrupt has been taken in
        if "interrupted" in line:
            break
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)  # far less than the 600 s grace period
    assert proc.returncode == 130
    resumed = cli("resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr
    assert _essentials(by_id(read_results(out))) == reference


def test_resume_refuses_another_workflow_or_input(cli: CliRun, tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", ({"id": i} for i in range(10)))
    out = tmp_path / "out.jsonl"
    run_dir = tmp_path / "run"
    assert cli("run", flow("echo"), "--input", str(inp), "--output", str(out),
               "--run-dir", str(run_dir)).returncode == 0
    other = cli("run", flow("not_json"), "--input", str(inp), "--resume", str(run_dir))
    assert other.returncode == 2 and "not" in other.stderr and "echo" in other.stderr
    other_input = write_jsonl(tmp_path / "other.jsonl", ({"id": i} for i in range(11)))
    changed = cli("run", flow("echo"), "--input", str(other_input), "--resume", str(run_dir))
    assert changed.returncode == 2 and "different input" in changed.stderr
    inp.write_bytes(inp.read_bytes() + b'{"id": 99}\n')
    edited = cli("resume", str(run_dir))
    assert edited.returncode == 2 and "changed since" in edited.stderr
