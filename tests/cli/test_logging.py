"""Messages on stderr go through stdlib logging: the workers' output too, and -q/--log-level
decide what is shown."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import pytest

from support.e2e import CliRun, read_results

FLOWS = Path(__file__).parent / "flows.py"


def _run(cli: CliRun, tmp_path: Path, *args: str) -> tuple[str, str]:
    proc = cli("run", f"{FLOWS}:noisy", "--generate", "2", "-w", "1", "--no-progress",
               "--output", "-", "--run-dir", str(tmp_path / "run"), *args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, proc.stderr


def test_worker_output_is_logged_naming_the_worker(cli: CliRun, tmp_path: Path) -> None:
    stdout, stderr = _run(cli, tmp_path)
    lines = stderr.splitlines()
    for i in (0, 1):
        assert f"shardflow: warning: worker 0: stdout of instance {i}" in lines
        assert f"shardflow: warning: worker 0: stderr of instance {i}" in lines
    assert "instance" not in stdout.replace('"noisy"', "")  # results only: no worker print
    assert len(stdout.splitlines()) == 2
    assert any(line.startswith("shardflow: 2 instances in") for line in lines)  # the summary, INFO


@pytest.mark.parametrize(("args", "shows_worker", "shows_summary"), [
    (["-q"], True, False),
    (["-qq"], False, False),
    (["--log-level", "error"], False, False),
    (["--log-level", "warning"], True, False),
])
def test_levels_choose_what_is_shown(cli: CliRun, tmp_path: Path, args: list[str],
                                     shows_worker: bool, shows_summary: bool) -> None:
    _, stderr = _run(cli, tmp_path, *args)
    assert ("worker 0: stdout of instance 0" in stderr) is shows_worker
    assert ("instances in" in stderr) is shows_summary


def test_the_level_is_read_from_the_environment(cli: CliRun, tmp_path: Path) -> None:
    proc = cli("run", f"{FLOWS}:noisy", "--generate", "1", "-w", "1", "--no-progress",
               "--output", str(tmp_path / "o.jsonl"), "--run-dir", str(tmp_path / "run"),
               env={"SHARDFLOW_LOG_LEVEL": "error"})
    assert proc.returncode == 0 and proc.stderr == ""
    assert len(read_results(tmp_path / "o.jsonl")) == 1


def test_a_process_left_behind_by_a_step_does_not_hold_the_run(cli: CliRun, test_dir: Path) -> None:
    """It keeps the workers' output pipe open; the run ends anyway (within the margin)."""
    began = time.monotonic()
    proc = cli("run", f"{FLOWS}:daemon", "--generate", "1", "-w", "1", "--no-progress",
               "--output", str(test_dir / "o.jsonl"), "--run-dir", str(test_dir / "run"), timeout=50)
    try:
        assert proc.returncode == 0, proc.stderr
        assert time.monotonic() - began < 30
    finally:  # only the daemon this test's step started, if it got that far
        pid_file = test_dir / "daemon.pid"
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
