"""SIGINT at any moment, start-up included, exits 130 without a traceback (with the resume
hint once the run directory exists); SIGTERM exits 143."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from support.e2e import by_id, read_results
from support.runs import Hold, Start, run_flow

SLOW = str(Path(__file__).parent / "slow_import.py") + ":workflow"


def _args(tmp_path: Path, target: str) -> list[str]:
    return ["run", target, "--generate", "50", "--workers", "1", "--no-progress",
            "--output", str(tmp_path / "out.jsonl"), "--run-dir", str(tmp_path / "run")]


def _wait_importing(test_dir: Path) -> None:
    """Blocks until the CLI process is importing the workflow (a FIFO, not a timer)."""
    with open(test_dir / "importing.fifo") as fifo:
        fifo.read()


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_while_the_workflow_is_imported(start: Start, tmp_path: Path, test_dir: Path,
                                                 sig: int, code: int) -> None:
    os.mkfifo(test_dir / "importing.fifo")
    os.mkfifo(test_dir / "never.fifo")
    proc = start(*_args(tmp_path, SLOW), env={"SHARDFLOW_SLOW_IMPORT": "cli"})
    _wait_importing(test_dir)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err and "nothing ran" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_mid_run_keeps_it_resumable(start: Start, tmp_path: Path, test_dir: Path,
                                             sig: int, code: int) -> None:
    hold = Hold(test_dir, at=20)
    proc = start(*_args(tmp_path, run_flow("effect")), "--grace-seconds", "30", env=hold.env)
    hold.wait()
    proc.send_signal(sig)
    hold.release()  # the held instance finishes within the grace period
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err and f"shardflow resume {tmp_path / 'run'}" in err
    resumed = subprocess.run([sys.executable, "-m", "shardflow", "resume", str(tmp_path / "run"),
                              "--no-progress"], capture_output=True, text=True, check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(by_id(read_results(tmp_path / "out.jsonl"))) == list(range(50))
