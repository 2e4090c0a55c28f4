"""Fixtures and helpers for tests/run and tests/cli: the CLI as a real subprocess (waited for,
or in the background), the side-effect log, and the FIFO handshake of ``run/flows.py``."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support.e2e import CliRun

FLOWS = str(Path(__file__).parent.parent / "run" / "flows.py")


def run_flow(name: str) -> str:
    return f"{FLOWS}:{name}"


Start = Callable[..., "subprocess.Popen[str]"]


@pytest.fixture
def test_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SHARDFLOW_TEST_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # .shardflow/ of runs without --run-dir stays in the test
    return tmp_path


@pytest.fixture
def cli(test_dir: Path) -> CliRun:
    def run(*args: str, timeout: float = 120, stdin: str | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        full = {**os.environ, "SHARDFLOW_TEST_DIR": str(test_dir), **(env or {})}
        return subprocess.run([sys.executable, "-m", "shardflow", *args], capture_output=True,
                              text=True, timeout=timeout, env=full, input=stdin, check=False)

    return run


@pytest.fixture
def start(test_dir: Path) -> Iterator[Start]:
    """``start(*args, env=...)``: the CLI as a background process (the test ends it)."""
    started: list[subprocess.Popen[str]] = []

    def spawn(*args: str, env: dict[str, str] | None = None,
              **popen: object) -> subprocess.Popen[str]:
        full = {**os.environ, "SHARDFLOW_TEST_DIR": str(test_dir), **(env or {})}
        options: dict[str, object] = {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE,
                                      **popen}
        proc = subprocess.Popen([sys.executable, "-m", "shardflow", *args], env=full,
                                text=True, **options)  # type: ignore[call-overload]
        started.append(proc)
        return proc

    yield spawn
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


def effects(test_dir: Path) -> list[str]:
    """Every execution of a side-effecting step, one id per line."""
    path = test_dir / "effects.log"
    return path.read_text().split() if path.exists() else []


class Hold:
    """The FIFO handshake of ``flows._hold_once`` for one tag: ``env`` makes instance ``at``
    hold; ``wait()`` blocks until it does (returns the worker's pid); ``release()`` lets it go."""

    def __init__(self, test_dir: Path, at: int, tag: str = "held") -> None:
        self.test_dir = test_dir
        self.tag = tag
        self.env = {"SHARDFLOW_HOLD_AT": str(at), "SHARDFLOW_HOLD_TAG": tag}
        os.mkfifo(test_dir / f"{tag}.fifo")
        os.mkfifo(test_dir / f"{tag}-go.fifo")

    def wait(self) -> int:
        with open(self.test_dir / f"{self.tag}.fifo") as fifo:
            return int(fifo.read().strip())

    def release(self) -> None:
        with open(self.test_dir / f"{self.tag}-go.fifo", "w") as go:
            go.write("go")
