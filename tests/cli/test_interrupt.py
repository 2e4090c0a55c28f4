"""Ctrl-C at any moment of ``shardflow run`` exits 130 with no traceback: while the command
imports its modules, while workers start (they get SIGINT with the process group), and while
the run goes on. The moments are wide apart on purpose; what each one checks does not depend
on which phase the signal lands in."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _start(tmp_path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "shardflow", "run", "shardflow.examples.chord:workflow",
         "--generate", "10000000", "--workers", "2", "--output", str(tmp_path / "out.jsonl"),
         "--run-dir", str(tmp_path / "run"), "--no-progress", "--grace-seconds", "5"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        cwd=tmp_path, start_new_session=True)  # its own group: Ctrl-C reaches its workers too


def _interrupt(proc: subprocess.Popen[str], before: str = "") -> None:
    try:
        os.killpg(proc.pid, signal.SIGINT)
        _, rest = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    stderr = before + rest
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    assert "interrupted" in stderr


@pytest.mark.parametrize("delay", [0.1, 0.4, 0.9])
def test_ctrl_c_at_any_moment_exits_130_without_a_traceback(tmp_path: Path, delay: float) -> None:
    proc = _start(tmp_path)
    time.sleep(delay)  # the moment of the Ctrl-C is what this test varies
    _interrupt(proc)


def test_ctrl_c_while_workers_start_exits_130_without_a_traceback(tmp_path: Path) -> None:
    """Right after the run is announced, its workers are importing: they get the SIGINT too."""
    proc = _start(tmp_path)
    assert proc.stderr is not None
    first = proc.stderr.readline()  # "shardflow: run ID (run directory ...)": workers start now
    assert first.startswith("shardflow: run "), first
    _interrupt(proc, first)


@pytest.mark.parametrize(("argv", "orig", "command"), [
    (["/venv/bin/shardflow", "run"], ["/venv/bin/python", "/venv/bin/shardflow", "run"], True),
    (["-m", "run"], ["python", "-m", "shardflow", "run"], True),
    (["-m"], ["python", "-X", "dev", "-mshardflow"], True),
    (["app.py"], ["python", "app.py"], False),  # a program using shardflow as a library
    (["-c"], ["python", "-c", "import shardflow"], False),
    (["-m"], ["python", "-m", "shardflow.batch.worker", "3"], False),  # workers: their own way
])
def test_only_the_shardflow_command_exits_quietly_while_importing(
        monkeypatch: pytest.MonkeyPatch, argv: list[str], orig: list[str], command: bool) -> None:
    from shardflow import _interrupt

    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.setattr(sys, "orig_argv", orig)
    assert _interrupt._is_command() is command
