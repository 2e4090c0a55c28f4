"""Start-up that survives: workers killed while they start are replaced, however many; a
workflow whose import hangs in workers is named after ``--startup-timeout``; a worker that
always exits while starting stops the run after a bounded number of attempts; a worker that
cannot be spawned is one line."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from shardflow import BatchExecutor
from shardflow._clock import FakeClock
from shardflow.batch.jobs import Feed, Job
from shardflow.batch.pool import WorkerPool
from shardflow.batch.spec import WorkerSpec
from shardflow.errors import WorkerStartError
from support.e2e import read_results
from support.listeners import QuietListener

TARGET = f"{Path(__file__).parent / 'startup_flows.py'}:workflow"


def _cli(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "shardflow", "run", TARGET, *args,
                             "--no-progress"], stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **env})


def test_a_storm_of_sigkills_during_start_up_loses_and_repeats_nothing(
        test_dir: Path, tmp_path: Path) -> None:
    """Workers killed by a signal while they start say nothing about the workflow: they are
    replaced (after a backoff) however many die in a row, and every id runs exactly once."""
    kills = 20  # 10 in a row per slot: twice what once stopped a run
    fifo = test_dir / "start.fifo"
    os.mkfifo(fifo)
    out = tmp_path / "out.jsonl"
    killed: list[int] = []

    def kill_starting_workers() -> None:
        while len(killed) < kills:
            with open(fifo) as pipe:  # blocks until a starting worker writes its pid
                for line in pipe:
                    os.kill(int(line), signal.SIGKILL)
                    killed.append(int(line))

    killer = threading.Thread(target=kill_starting_workers, daemon=True)
    killer.start()
    proc = _cli("--generate", "1000", "--workers", "2", "--output", str(out),
                "--run-dir", str(tmp_path / "run"),
                env={"SHARDFLOW_STARTUP": "signal-then-block",
                     "SHARDFLOW_STARTUP_KILLS": str(kills)})
    _, stderr = proc.communicate(timeout=240)
    killer.join(timeout=10)
    assert len(killed) == kills
    assert proc.returncode == 0, stderr
    results = read_results(out)
    assert sorted(r["id"] for r in results) == list(range(1000)), "every id exactly once"
    assert all(r["status"] == "completed" for r in results)
    runs = sorted(int(x) for x in (test_dir / "runs.log").read_text().split())
    assert runs == list(range(1000)), "every instance ran exactly once"


def test_a_worker_that_cannot_be_spawned_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """An interpreter that cannot be run (here: not executable) ends the run with one clear
    line naming it, no traceback."""
    interpreter = tmp_path / "python-not-executable"
    interpreter.write_bytes(b"")
    interpreter.chmod(0o644)
    code = ("import sys; sys.executable = sys.argv.pop(1); "
            "from shardflow.cli.main import main; main()")
    proc = subprocess.run(
        [sys.executable, "-c", code, str(interpreter), "run", TARGET, "--generate", "5",
         "--workers", "1", "--output", str(tmp_path / "out.jsonl"), "--no-journal",
         "--no-progress"], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    [line] = [x for x in proc.stderr.splitlines() if "error" in x]
    assert line.startswith("shardflow: error: workers cannot start workflow")
    assert f"cannot start a worker process ({interpreter}: Permission denied)" in line


def test_a_workflow_that_hangs_on_import_in_workers_is_named(test_dir: Path,
                                                              tmp_path: Path) -> None:
    proc = _cli("--generate", "5", "--workers", "1", "--startup-timeout", "2",
                "--output", str(tmp_path / "out.jsonl"), "--no-journal",
                env={"SHARDFLOW_STARTUP": "hang"})
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 2, stderr
    assert "startup_flows.py:workflow" in stderr and "not ready 2 s after it started" in stderr
    assert "Traceback" not in stderr
    hung = int((test_dir / "hung.pid").read_text())
    assert not Path(f"/proc/{hung}").exists(), "the hung worker was left running"


def test_a_worker_that_always_dies_while_starting_stops_the_pool(
        run: Any, test_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHARDFLOW_STARTUP", "crash")

    async def main() -> WorkerPool:
        pool = WorkerPool(WorkerSpec(TARGET), 1, Feed(iter([Job(0, 0, b"{}")])), _Listener(),
                          start_attempts=2)
        try:
            with pytest.raises(WorkerStartError, match="2 workers in a row died during start-up"
                               r" \(the last exited with code 3\)"):
                await pool.start()
        finally:
            await pool.close()
        return pool

    pool = run(main())
    assert pool.start_failures == 2


def test_workers_killed_by_signals_are_retried_only_within_the_start_up_timeout(
        test_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Signal deaths do not count as attempts, but they do not go on for ever either (one
    loop: what is tested is the pool's policy, not the loop)."""
    monkeypatch.setenv("SHARDFLOW_STARTUP", "sigkill")

    async def main() -> WorkerPool:
        pool = WorkerPool(WorkerSpec(TARGET), 1, Feed(iter([Job(0, 0, b"{}")])), _Listener(),
                          start_attempts=2, startup_timeout=4.0)
        try:
            with pytest.raises(WorkerStartError, match=r"workers kept being killed during "
                               r"start-up for 4 s \(the last killed by SIGKILL\)"):
                await pool.start()
        finally:
            await pool.close()
        return pool

    pool = asyncio.run(main())
    assert pool.start_failures > 2, "more signal deaths than start_attempts were retried"


def test_start_up_timeout_runs_on_the_pools_clock(run: Any, test_dir: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHARDFLOW_STARTUP", "hang")
    clock = FakeClock()

    async def main() -> None:
        pool = WorkerPool(WorkerSpec(TARGET), 1, Feed(iter([])), _Listener(),
                          startup_timeout=600.0, clock=clock)
        starting = asyncio.ensure_future(pool.start())
        try:
            await clock.wait_for_timers(1)  # the worker is starting, its deadline is set
            clock.advance(599.9)
            assert clock.pending_timers == 1, "the deadline has not fired early"
            clock.advance(0.1)
            assert clock.pending_timers == 0
            with pytest.raises(WorkerStartError, match="not ready 600 s after it started"):
                await starting
        finally:
            await pool.close()

    run(main())


def test_submissions_fail_when_no_worker_can_start_again(run: Any, test_dir: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The embedding API never leaves a submission waiting forever."""
    monkeypatch.setenv("SHARDFLOW_STARTUP", "only-once")
    target = TARGET.replace(":workflow", ":killer")

    async def main() -> None:
        with pytest.raises(WorkerStartError):
            async with BatchExecutor(target, workers=1) as ex:
                pending = [asyncio.ensure_future(ex.submit({"id": i})) for i in range(10)]
                await asyncio.wait(pending)
        for i, future in enumerate(pending):  # each answered: a result, or the error
            if future.exception() is None:
                assert i != 5 and future.result().status == "completed"
            else:
                assert isinstance(future.exception(), WorkerStartError)
        assert isinstance(pending[5].exception(), WorkerStartError)

    run(main())


class _Listener(QuietListener):
    def on_batch(self, jobs: list[Job], rows: list[list[Any]], lines: list[bytes]) -> None:
        raise AssertionError("nothing runs")
