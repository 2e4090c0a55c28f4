"""Human tasks in batch runs: instances wait in SQLite, people complete tasks from the CLI,
``resume`` finishes them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from shardflow.store.tasks import SQLiteTaskStore
from support.e2e import CliRun, by_id, read_results

APPROVALS = "shardflow.examples.approvals:workflow"


def _tasks(cli: CliRun, run_dir: Path) -> list[dict[str, Any]]:
    proc = cli("tasks", "list", str(run_dir), "--json")
    assert proc.returncode == 0, proc.stderr
    return [orjson.loads(line) for line in proc.stdout.splitlines()]


def test_approvals_batch_waits_then_resumes(cli: CliRun, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    run_dir = tmp_path / "run"
    proc = cli("run", APPROVALS, "--generate", "6", "--output", str(out), "--workers", "2",
               "--run-dir", str(run_dir))
    assert proc.returncode == 0, proc.stderr
    first = read_results(out)
    assert sorted(r["id"] for r in first) == list(range(6))
    assert all(r["status"] == "waiting" for r in first)
    assert "6 instances wait for people" in proc.stderr
    tasks = _tasks(cli, run_dir)
    assert len(tasks) == 18
    assert {t["step"] for t in tasks} == {"legal_approval", "finance_approval", "security_approval"}

    security = next(t for t in tasks if t["step"] == "security_approval")
    invalid = cli("tasks", "complete", security["id"], "--data", '{"approved": "yes"}')
    assert invalid.returncode == 1
    assert "approved: 'yes' is not of type 'boolean'" in invalid.stderr
    assert "'risk_level' is a required property" in invalid.stderr
    assert len(_tasks(cli, run_dir)) == 18  # still open

    shown = cli("tasks", "show", security["id"], "--run-dir", str(run_dir))
    assert orjson.loads(shown.stdout)["form_schema"]["required"] == ["approved", "risk_level"]

    for task in tasks:
        instance = int(task["instance_id"])
        approve = not (instance % 3 == 0 and task["step"] == "legal_approval")
        data = {"approved": approve}
        if task["step"] == "security_approval":
            data["risk_level"] = "low"
        data_file = tmp_path / f"{task['id']}.json"
        data_file.write_bytes(orjson.dumps(data))
        done = cli("tasks", "complete", task["id"], "--data-file", str(data_file),
                   "--user", "ann", "--run-dir", str(run_dir))
        assert done.returncode == 0, done.stderr
    assert _tasks(cli, run_dir) == []

    resumed = cli("resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr
    final = by_id(read_results(out))  # each id once: final records replaced the waiting lines
    assert sorted(final) == list(range(6))
    for i, result in final.items():
        assert result["status"] == "completed"
        assert result["context"]["all_approved"] is (i % 3 != 0)
        assert result["context"]["legal_approval"]["approved"] is (i % 3 != 0)
    again = cli("resume", str(run_dir))
    assert again.returncode == 0 and "already finished" in again.stderr


def test_two_concurrent_completions_succeed_once(cli: CliRun, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = cli("run", APPROVALS, "--generate", "1", "--output", str(tmp_path / "out.jsonl"),
               "--workers", "1", "--run-dir", str(run_dir))
    assert proc.returncode == 0, proc.stderr
    task = next(t for t in _tasks(cli, run_dir) if t["step"] == "legal_approval")
    args = [sys.executable, "-m", "shardflow", "tasks", "complete", task["id"], "--data",
            '{"approved": true}', "--run-dir", str(run_dir)]
    racers = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ)) for _ in range(2)]
    outcomes = [(r.wait(timeout=60), r.communicate()[1]) for r in racers]
    codes = sorted(code for code, _ in outcomes)
    assert codes == [0, 1], outcomes
    assert any("already completed" in err for _, err in outcomes)


def _complete_all(run_dir: Path, data: Callable[[str], dict[str, Any]]) -> None:
    """Complete every open task through the store (as 'shardflow tasks complete' does)."""
    store = SQLiteTaskStore(run_dir / "tasks.db")
    try:
        for task in store.list_tasks():
            store.complete_task(task.id, data(task.step), "ann")
    finally:
        store.close()


def test_a_resume_of_a_finished_run_still_reconciles_the_output(cli: CliRun,
                                                                tmp_path: Path) -> None:
    """A resume stopped after it continued instances (SIGTERM, or the inbox stopped) leaves
    each continued id twice in the output, ``waiting`` and ``completed``, and the run looks
    finished. The next resume has nothing to run, but still makes the output one line per id."""
    out, run_dir = tmp_path / "out.jsonl", tmp_path / "run"
    assert cli("run", APPROVALS, "--generate", "3", "--output", str(out), "--workers", "1",
               "--run-dir", str(run_dir)).returncode == 0
    waiting_lines = out.read_bytes().splitlines(keepends=True)
    _complete_all(run_dir, lambda step: {"approved": True, "risk_level": "low"}
                  if step == "security_approval" else {"approved": True})
    assert cli("resume", str(run_dir)).returncode == 0
    # What the interrupted continuation left: the waiting lines before the final ones.
    out.write_bytes(b"".join(waiting_lines) + out.read_bytes())
    again = cli("resume", str(run_dir))
    assert again.returncode == 0, again.stderr
    assert "already finished" in again.stderr
    records = read_results(out)
    assert sorted(r["id"] for r in records) == [0, 1, 2], "each id exactly once"
    assert all(r["status"] == "completed" for r in records)


def test_a_resume_stopped_mid_way_leaves_one_line_per_id(cli: CliRun, test_dir: Path,
                                                          tmp_path: Path) -> None:
    """SIGTERM while a resume continues instances: those it finished have their final line,
    the one it was running keeps its ``waiting`` line, none has two; the next resume ends it."""
    target = f"{Path(__file__).parent / 'hold_flows.py'}:workflow"
    out, run_dir, n = tmp_path / "out.jsonl", tmp_path / "run", 10
    assert cli("run", target, "--generate", str(n), "--output", str(out), "--workers", "1",
               "--run-dir", str(run_dir)).returncode == 0
    _complete_all(run_dir, lambda step: {"ok": True})
    resume = subprocess.Popen(
        [sys.executable, "-m", "shardflow", "resume", str(run_dir), "--no-progress",
         "--grace-seconds", "1"], stderr=subprocess.PIPE, text=True,
        env={**os.environ, "SHARDFLOW_HOLD": "1"})
    try:
        deadline = time.monotonic() + 60  # a wide margin: the other 9 finish in well under 1 s
        while not ((test_dir / "held").exists() and out.read_bytes().count(b"\n") >= 2 * n - 1):
            assert time.monotonic() < deadline and resume.poll() is None, "the resume never held"
            time.sleep(0.02)
        resume.send_signal(signal.SIGTERM)
        _, stderr = resume.communicate(timeout=60)
    finally:
        if resume.poll() is None:
            resume.kill()
            resume.wait()
    assert resume.returncode == 143, stderr
    records = read_results(out)
    assert sorted(r["id"] for r in records) == list(range(n)), "one line per id, right away"
    assert {r["id"]: r["status"] for r in records if r["status"] != "completed"} == {0: "waiting"}
    again = cli("resume", str(run_dir))
    assert again.returncode == 0, again.stderr
    records = read_results(out)
    assert sorted(r["id"] for r in records) == list(range(n))
    assert all(r["status"] == "completed" for r in records)
