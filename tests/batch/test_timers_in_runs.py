"""A batch run continues its long timers when they are due: while it works, and, once only
parked timers remain, by waiting for those due within ``--wait-timers``; the others stay
parked (exit 75, the summary says when the next is due and how to resume). Ctrl-C/SIGTERM
while waiting keep their meaning, and a kill -9 loses nothing and duplicates nothing: resume
fires each timer once and every id appears once in the output.

Timers are either due at once or a day away, except one of a second; FIFO rendezvous, not
sleeps, say when something happened."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from shardflow.run.timer_watch import TICK, next_move
from support.e2e import CliRun, by_id, read_results, write_jsonl

GATED = str(Path(__file__).parent / "kind_flows.py") + ":gated_timer"
DAY = 86400


def _run(cli: CliRun, tmp_path: Path, records: list[dict[str, Any]],
         *extra: str) -> subprocess.CompletedProcess[str]:
    inp = write_jsonl(tmp_path / "in.jsonl", records)
    return cli("run", GATED, "--input", str(inp), "--output", str(tmp_path / "out.jsonl"),
               "--run-dir", str(tmp_path / "run"), "--workers", "1", "--no-progress", *extra)


def _timer_tasks(cli: CliRun, run_dir: Path) -> list[dict[str, Any]]:
    proc = cli("tasks", "list", str(run_dir), "--kind", "timer", "--all", "--json")
    assert proc.returncode == 0, proc.stderr
    return [orjson.loads(line) for line in proc.stdout.splitlines()]


def test_the_watch_fires_due_timers_works_then_waits_within_the_bound_then_stops() -> None:
    assert next_move(100.0, 100.0, working=True, bound=0) == 0  # due: fire, working or not
    assert next_move(100.0, 99.0, working=False, bound=0) == 0
    assert next_move(100.0, None, working=True, bound=0) == TICK  # look again soon
    soon = next_move(100.0, 100.1, working=True, bound=0)  # due before the next look
    assert soon is not None and abs(soon - 0.1) < 1e-9
    assert next_move(100.0, 400.0, working=False, bound=300) == 300  # within the bound: wait
    assert next_move(100.0, 401.0, working=False, bound=300) is None  # beyond it: stop
    assert next_move(100.0, None, working=False, bound=300) is None


def test_a_timer_due_while_the_run_works_is_continued_by_that_run(
        cli: CliRun, tmp_path: Path) -> None:
    """Instance 1 cannot finish until instance 0 has been continued after its timer (they
    meet at a FIFO): the run must continue 0 while 1 is still in flight, even with
    ``--wait-timers 0``."""
    fifo = tmp_path / "meet"
    os.mkfifo(fifo)
    proc = _run(cli, tmp_path, [{"id": 0, "delay": 0, "notify": str(fifo)},
                                {"id": 1, "delay": 0, "wait_for": str(fifo)}],
                "--wait-timers", "0")
    assert proc.returncode == 0, proc.stderr
    (summary,) = [line for line in proc.stderr.splitlines() if " instances in " in line]
    assert summary.startswith("shardflow: 2 instances") and summary.endswith("completed 2")
    final = by_id(read_results(tmp_path / "out.jsonl"))  # each id once: the waiting line replaced
    assert {i: r["status"] for i, r in final.items()} == {0: "completed", 1: "completed"}
    assert all(r["context"]["woke"] for r in final.values())
    assert [t["completed_by"] for t in _timer_tasks(cli, tmp_path / "run")] == ["<timer>"] * 2


def test_a_run_waits_for_timers_due_within_the_bound_and_parks_the_others(
        cli: CliRun, tmp_path: Path) -> None:
    summary = tmp_path / "summary.json"
    proc = _run(cli, tmp_path, [{"id": 0, "delay": 1}, {"id": 1, "delay": DAY}],
                "--wait-timers", "10m", "--summary-json", str(summary))
    assert proc.returncode == 75, proc.stderr
    assert "waiting for parked timers" in proc.stderr
    assert "1 timer parked, the next due at" in proc.stderr
    assert f"shardflow resume {tmp_path / 'run'}" in proc.stderr
    final = by_id(read_results(tmp_path / "out.jsonl"))
    assert final[0]["status"] == "completed" and final[1]["status"] == "waiting"
    parked = orjson.loads(summary.read_bytes())["parked_timers"]
    (task,) = [t for t in _timer_tasks(cli, tmp_path / "run") if t["completed_at"] is None]
    assert parked == {"count": 1, "next_due": task["due_at"]}
    listed = cli("tasks", "list", str(tmp_path / "run"), "--kind", "timer").stdout
    assert task["id"] in listed and "DUE" in listed
    assert cli("tasks", "list", str(tmp_path / "run")).stdout.strip() == "no open human tasks"
    again = cli("resume", str(tmp_path / "run"), "--wait-timers", "0", "--no-progress")
    assert again.returncode == 75, again.stderr  # not due yet: still parked, nothing changed
    assert by_id(read_results(tmp_path / "out.jsonl"))[1]["status"] == "waiting"


def _popen(tmp_path: Path, records: list[dict[str, Any]], *extra: str) -> subprocess.Popen[str]:
    inp = write_jsonl(tmp_path / "in.jsonl", records)
    return subprocess.Popen(
        [sys.executable, "-m", "shardflow", "run", GATED, "--input", str(inp),
         "--output", str(tmp_path / "out.jsonl"), "--run-dir", str(tmp_path / "run"),
         "--workers", "1", "--no-progress", *extra],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        cwd=tmp_path, start_new_session=True)  # its own group, ended by the test alone


def _stop(proc: subprocess.Popen[str], sig: int) -> str:
    try:
        os.killpg(proc.pid, sig)
        _, rest = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return rest


def test_sigterm_while_waiting_for_a_timer_stops_the_run_resumably(tmp_path: Path) -> None:
    proc = _popen(tmp_path, [{"id": 0, "delay": 3600}], "--wait-timers", "2h")
    assert proc.stderr is not None
    seen = ""
    while "waiting for parked timers" not in seen:  # the run says when it starts waiting
        line = proc.stderr.readline()
        assert line, seen
        seen += line
    rest = _stop(proc, signal.SIGTERM)
    assert proc.returncode == 143, seen + rest
    assert "Traceback" not in rest and f"shardflow resume {tmp_path / 'run'}" in rest
    assert [r["status"] for r in read_results(tmp_path / "out.jsonl")] == ["waiting"]


def test_kill_9_while_continuing_timers_then_resume_fires_each_once(
        cli: CliRun, tmp_path: Path) -> None:
    started, hold = tmp_path / "started", tmp_path / "hold"
    os.mkfifo(started)
    hold.touch()
    records = [{"id": i, "delay": 0, "hold": str(hold), "started": str(started)} for i in range(4)]
    proc = _popen(tmp_path, records, "--wait-timers", "1h")
    with open(started):  # a continued instance is running its step after the timer now
        pass
    _stop(proc, signal.SIGKILL)
    hold.unlink()
    resumed = cli("resume", str(tmp_path / "run"), "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    final = by_id(read_results(tmp_path / "out.jsonl"))  # fails if an id appears twice
    assert sorted(final) == [0, 1, 2, 3]
    assert all(r["status"] == "completed" and r["context"]["woke"] for r in final.values())
    timers = _timer_tasks(cli, tmp_path / "run")
    assert sorted(t["instance_id"] for t in timers) == ["0", "1", "2", "3"]  # one task each
    assert {t["completed_by"] for t in timers} == {"<timer>"}
