"""Packaging: uvloop is optional (it does not build on Windows) and the version is written once."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement

import shardflow
from support.e2e import CliRun, read_results
from support.runs import run_flow

ROOT = Path(__file__).parent.parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_uvloop_is_only_required_where_it_installs() -> None:
    requirements = {Requirement(r).name: Requirement(r) for r in PROJECT["project"]["dependencies"]}
    marker = requirements["uvloop"].marker
    assert marker is not None
    assert not marker.evaluate({"sys_platform": "win32"})
    assert marker.evaluate({"sys_platform": "linux"}) and marker.evaluate({"sys_platform": "darwin"})


def test_a_run_without_uvloop_falls_back_to_asyncio(cli: CliRun, tmp_path: Path) -> None:
    """A ``uvloop`` that cannot be imported (as on Windows) in the coordinator and in every
    worker: the run still completes."""
    blocker = tmp_path / "no_uvloop"
    blocker.mkdir()
    (blocker / "uvloop.py").write_text("raise ImportError('uvloop is not installed here')\n")
    src = str(ROOT / "src")
    out = tmp_path / "out.jsonl"
    proc = cli("run", run_flow("effect"), "--generate", "4", "--workers", "2", "--no-progress",
               "--output", str(out), "--run-dir", str(tmp_path / "run"),
               env={"PYTHONPATH": f"{blocker}:{src}"})
    assert proc.returncode == 0, proc.stderr
    assert sorted(r["id"] for r in read_results(out)) == [0, 1, 2, 3]


def test_the_version_is_written_once() -> None:
    assert "version" not in PROJECT["project"]
    assert "version" in PROJECT["project"]["dynamic"]
    assert PROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "shardflow.__version__"}
    assert shardflow.__version__[0].isdigit()


def test_the_project_says_what_it_is_and_where_it_lives() -> None:
    classifiers = PROJECT["project"]["classifiers"]
    assert "Programming Language :: Python :: 3.11" in classifiers
    assert "Typing :: Typed" in classifiers
    assert {"Homepage", "Source", "Issues"} <= set(PROJECT["project"]["urls"])
