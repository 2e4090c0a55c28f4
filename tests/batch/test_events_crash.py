"""``run/resume --events FILE`` across crashes: a SIGKILLed coordinator or worker loses no
instance's events, and leaves none for a result that will never exist (at least once, each
run of an instance whole and in order)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable
from pathlib import Path

import orjson

from support.e2e import CliRun, by_id, flow, read_results, write_jsonl

N = 600
RUN = ["workflow.started", "step.started", "step.completed", "step.started", "step.completed",
       "workflow.completed"]
"""The events of one run of an instance of the two-step test flows, in order."""


def _runs_of(lines: Iterable[bytes]) -> dict[str, list[list[str]]]:
    """Instance id -> its runs, each the list of its event types (a run starts at
    ``workflow.started``)."""
    runs: dict[str, list[list[str]]] = {}
    for line in lines:
        event = orjson.loads(line)
        mine = runs.setdefault(event["instance_id"], [])
        if event["event"] == "workflow.started":
            mine.append([])
        assert mine, f"an event of {event['instance_id']} before its workflow.started"
        mine[-1].append(event["event"])
    return runs


def _assert_every_result_has_whole_runs(out: Path, events: Path) -> None:
    results = by_id(read_results(out))
    assert set(results) == set(range(N))
    assert {r["status"] for r in results.values()} == {"completed"}
    runs = _runs_of(events.read_bytes().splitlines())
    assert set(runs) == {str(i) for i in results}  # no events without a result
    assert all(every == [RUN] * len(every) for every in runs.values())


def test_sigkill_of_the_coordinator_then_resume(cli: CliRun, test_dir: Path,
                                                tmp_path: Path) -> None:
    os.mkfifo(test_dir / "pause.fifo")
    inp = write_jsonl(tmp_path / "in.jsonl", ({"id": i, "value": i} for i in range(N)))
    out, events, run_dir = tmp_path / "out.jsonl", tmp_path / "events.jsonl", tmp_path / "run"
    env = {**os.environ, "SHARDFLOW_TEST_DIR": str(test_dir), "SHARDFLOW_PAUSE_AT": str(N // 2)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "shardflow", "run", flow("pausable"), "--input", str(inp),
         "--output", str(out), "--workers", "2", "--max-in-flight", "100", "--run-dir",
         str(run_dir), "--events", str(events)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    with open(test_dir / "pause.fifo") as fifo:  # instance N/2 is running: the run is midway
        assert fifo.read().strip().isdigit()
    proc.kill()
    proc.communicate(timeout=30)
    assert 0 < len(read_results(out)) < N

    resumed = cli("resume", str(run_dir))  # as the run's resume hint says: no --events

    assert resumed.returncode == 0, resumed.stderr
    assert f"events go to {events}, as the run's" in resumed.stderr
    _assert_every_result_has_whole_runs(out, events)


def test_sigkill_of_a_worker(cli: CliRun, test_dir: Path, tmp_path: Path) -> None:
    fifo = test_dir / "pid.fifo"
    os.mkfifo(fifo)
    inp = write_jsonl(tmp_path / "in.jsonl", ({"id": i, "value": i} for i in range(N)))
    out, events = tmp_path / "out.jsonl", tmp_path / "events.jsonl"
    killed: list[int] = []

    def kill_when_signalled() -> None:
        with open(fifo) as pipe:  # instance 200 writes its worker's pid, then waits
            pid = int(pipe.read())
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    killer = threading.Thread(target=kill_when_signalled, daemon=True)
    killer.start()
    proc = cli("run", flow("killed_mid_run"), "--input", str(inp), "--output", str(out),
               "--workers", "2", "--max-in-flight", "100", "--events", str(events))
    killer.join(timeout=10)
    assert killed, "instance 200 never signalled"
    assert proc.returncode == 0, proc.stderr
    _assert_every_result_has_whole_runs(out, events)
    assert by_id(read_results(out))[200]["attempts"] == 2


def test_a_line_cut_short_is_ended_before_a_run_appends(cli: CliRun, tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", ({"id": i, "value": i} for i in range(N)))
    out, events, run_dir = tmp_path / "out.jsonl", tmp_path / "events.jsonl", tmp_path / "run"
    events.write_bytes(b'{"event":"workflow.sta')  # as a write cut short by a crash leaves it
    done = cli("run", flow("echo"), "--input", str(inp), "--output", str(out),
               "--workers", "1", "--run-dir", str(run_dir), "--events", str(events))
    assert done.returncode == 0, done.stderr
    torn, *rest = events.read_bytes().splitlines()
    assert torn == b'{"event":"workflow.sta'  # kept as it was: the file is the user's
    assert set(_runs_of(rest)) == {str(i) for i in range(N)}
