"""Failures of one instance that used to take a whole run with them, end to end.

Each runs a real ``shardflow run`` (coordinator and worker processes). On the code before the
shard runner, the first two hung forever (an instance never answered: ``wait_idle`` never
returns), hence the timeouts; the orphan test found tracebacks on stderr.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from support.e2e import CliRun, by_id, read_results

FLOWS = str(Path(__file__).parent / "boundary_flows.py")


@pytest.mark.timeout(90)
@pytest.mark.parametrize("raised", ["CancelledError", "KeyboardInterrupt", "SystemExit", "Special"])
def test_a_step_raising_a_base_exception_fails_its_instance_alone(
        cli: CliRun, tmp_path: Path, raised: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHARDFLOW_RAISE", raised)
    out = tmp_path / "out.jsonl"
    proc = cli("run", f"{FLOWS}:raising", "--generate", "40", "--workers", "1",
               "--output", str(out), "--run-dir", str(tmp_path / "run"), "--no-progress",
               timeout=60)
    assert proc.returncode == 1, proc.stderr  # some instances failed
    results = by_id(read_results(out))
    assert set(results) == set(range(40))
    failed = results.pop(3)
    assert failed["status"] == "failed"
    assert failed["error"]["step"] == "raise_in_branch"
    assert failed["error"]["type"] == raised
    assert all(r["status"] == "completed" and r["context"]["joined"] for r in results.values())


@pytest.mark.timeout(90)
def test_an_instance_that_cannot_park_fails_naming_its_human_step(cli: CliRun, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    proc = cli("run", f"{FLOWS}:bad_schema", "--generate", "10", "--workers", "1",
               "--output", str(out), "--run-dir", str(tmp_path / "run"), "--no-progress",
               timeout=60)
    assert proc.returncode == 1, proc.stderr
    results = by_id(read_results(out))
    assert set(results) == set(range(10))
    failed = results.pop(2)
    assert failed["status"] == "failed"
    assert failed["error"]["step"] == "approve"
    assert failed["error"]["type"] == "TypeError"
    assert failed["context"]["needs_approval"] is True
    assert all(r["status"] == "completed" for r in results.values())


@pytest.mark.timeout(90)
def test_a_definition_invalid_only_in_workers_stops_the_run_naming_the_problem(
        cli: CliRun, tmp_path: Path) -> None:
    proc = cli("run", f"{FLOWS}:invalid_in_workers", "--generate", "10", "--workers", "1",
               "--output", str(tmp_path / "out.jsonl"), "--run-dir", str(tmp_path / "run"),
               "--no-progress", timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "approve" in proc.stderr and "form_schema" in proc.stderr
    assert "Traceback" not in proc.stderr and "died during start-up" not in proc.stderr


def _group_members(pgid: int) -> list[int]:
    """Pids of the live processes in process group ``pgid``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":  # fields: state, ppid, pgrp, ...
            found.append(int(entry))
    return found


@pytest.mark.timeout(90)
def test_orphaned_workers_exit_quickly_and_quietly(test_dir: Path, tmp_path: Path) -> None:
    fifo = test_dir / "run.fifo"
    os.mkfifo(fifo)
    stderr = tmp_path / "stderr.txt"
    with open(stderr, "wb") as err:
        coordinator = subprocess.Popen(
            [sys.executable, "-m", "shardflow", "run", f"{FLOWS}:long_running",
             "--generate", "100000", "--workers", "2", "--max-in-flight", "200",
             "--limit", "slots=4",
             "--output", str(tmp_path / "out.jsonl"), "--run-dir", str(tmp_path / "run"),
             "--no-progress"],
            stdout=subprocess.DEVNULL, stderr=err, start_new_session=True,
            env={**os.environ, "SHARDFLOW_TEST_DIR": str(test_dir)},
        )
    try:
        with open(fifo) as pipe:  # instance 100 is running: both workers are serving
            int(pipe.read())
        workers = [pid for pid in _group_members(coordinator.pid) if pid != coordinator.pid]
        assert len(workers) == 2
        pidfds = [os.pidfd_open(pid) for pid in workers]
        coordinator.kill()
        coordinator.wait()
        # A pidfd becomes readable when its process exits: wait on that, not on time.
        ready, _, _ = select.select(pidfds, [], [], 10.0)
        still = set(pidfds) - set(ready)
        while still:
            more, _, _ = select.select(list(still), [], [], 10.0)
            assert more, f"orphaned workers still alive 10 s after the coordinator died: {workers}"
            still -= set(more)
        for fd in pidfds:
            os.close(fd)
    finally:
        for pid in _group_members(coordinator.pid):  # only the group this test created
            with contextlib.suppress(ProcessLookupError):  # it may have exited meanwhile
                os.kill(pid, signal.SIGKILL)
    text = stderr.read_text()  # before the shard runner: RemoteGate._flush RuntimeError tracebacks
    assert "Traceback" not in text, text
    assert "Error" not in text, text


@pytest.mark.timeout(90)
def test_a_module_exiting_on_import_in_workers_stops_the_run_with_its_message(
        cli: CliRun, tmp_path: Path) -> None:
    """``sys.exit`` while the worker imports the workflow is a load failure like any other
    exception: exit 2 and the loader's message, not a worker that died during start-up."""
    module = tmp_path / "exits_in_worker.py"
    module.write_text(
        "import os, sys\n"
        "from shardflow.examples.notify import build\n"
        "if 'SHARDFLOW_WORKER_SPEC' in os.environ:\n"
        "    sys.exit('this module refuses to load in a worker')\n"
        "workflow = build('exits_in_worker')\n")
    proc = cli("run", f"{module}:workflow", "--generate", "10", "--workers", "1",
               "--output", str(tmp_path / "out.jsonl"), "--run-dir", str(tmp_path / "run"),
               "--no-progress", timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "SystemExit: this module refuses to load in a worker" in proc.stderr
    assert "Traceback" not in proc.stderr
