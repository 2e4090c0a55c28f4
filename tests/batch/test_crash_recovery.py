"""A killed worker loses nothing: its in-flight instances re-run, each id appears once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from support.e2e import by_id, flow, read_results, write_jsonl


def test_sigkill_of_a_worker_mid_run(test_dir: Path, tmp_path: Path) -> None:
    """The test kills the worker running instance 200 while hundreds are in flight."""
    fifo = test_dir / "pid.fifo"
    os.mkfifo(fifo)
    inp = write_jsonl(tmp_path / "in.jsonl", ({"id": i, "value": i} for i in range(4000)))
    out = tmp_path / "out.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "shardflow", "run", flow("killed_mid_run"), "--input", str(inp),
         "--output", str(out), "--workers", "2", "--max-in-flight", "300"],
        stderr=subprocess.PIPE, text=True,
    )
    killed: list[int] = []

    def kill_when_signalled() -> None:
        with open(fifo) as pipe:  # blocks until instance 200 writes its worker's pid
            pid = int(pipe.read())
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    killer = threading.Thread(target=kill_when_signalled, daemon=True)
    killer.start()
    _, stderr = proc.communicate(timeout=120)
    killer.join(timeout=10)
    assert killed, "instance 200 never signalled"
    assert proc.returncode == 0, stderr
    results = by_id(read_results(out))
    assert set(results) == set(range(4000))
    assert all(r["status"] == "completed" for r in results.values())
    assert all(r["context"]["double"] == {"value": 2 * i} for i, r in results.items())
    assert results[200]["attempts"] == 2
    assert any(r["attempts"] == 2 for i, r in results.items() if i != 200)  # its neighbours


def test_worker_killed_by_its_instance_is_replaced(test_dir: Path) -> None:
    from shardflow import run_batch

    results = run_batch(flow("crash_once"), [{"id": i, "value": i} for i in range(500)],
                        workers=2, max_in_flight=100)
    assert [r.id for r in results] == list(range(500))
    assert all(r.status == "completed" for r in results)
    assert results[50].attempts == 2
    assert (test_dir / "crash.marker").exists()


def test_instance_that_kills_three_workers_fails_as_worker_lost(test_dir: Path) -> None:
    from shardflow import run_batch

    results = run_batch(flow("always_crash"), [{"id": i} for i in range(300)],
                        workers=2, max_in_flight=50)
    by = {r.id: r for r in results}
    assert len(by) == 300
    assert by[7].status == "failed"
    assert by[7].error is not None and by[7].error["type"] == "WorkerLost"
    assert by[7].attempts == 3
    assert all(r.status == "completed" for i, r in by.items() if i != 7)
