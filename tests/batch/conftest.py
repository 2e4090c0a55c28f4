"""Fixtures for end-to-end tests: the CLI as a real subprocess with a scratch directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.e2e import CliRun


@pytest.fixture
def test_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory for marker and log files, visible to worker processes."""
    monkeypatch.setenv("SHARDFLOW_TEST_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
def cli(test_dir: Path) -> CliRun:
    def run(*args: str, timeout: float = 120, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "SHARDFLOW_TEST_DIR": str(test_dir)}
        return subprocess.run(
            [sys.executable, "-m", "shardflow", *args], capture_output=True, text=True,
            timeout=timeout, env=env, input=stdin, check=False,
        )

    return run
