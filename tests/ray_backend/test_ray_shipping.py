"""What a Ray run ships to the nodes (issue 24): the working directory without the run's
data, bounded by Ray's cap, said in one line; file targets re-based onto it.

Packing needs no cluster: these tests read the zip Ray would upload."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import orjson
import pytest

pytest.importorskip("ray", reason="the Ray backend's tests need Ray: pip install 'shardflow[ray]'")

from shardflow.backends.ray.shipping import pack, rebase_target, run_data
from shardflow.errors import ConfigError


def _file(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _run_dir(path: Path, source: Path, output: Path) -> Path:
    _file(path / "run.json", orjson.dumps({"input": {"path": str(source)}, "output": str(output)}))
    _file(path / "journal.jsonl", b"")
    return path


def _shipped(root: Path, **options: object) -> set[str]:
    package = pack(root, into=root.parent, **options)  # type: ignore[arg-type]
    with zipfile.ZipFile(package.path) as archive:
        return set(archive.namelist())


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    _file(root / "flows.py", b"workflow = None\n")
    _file(root / "lib" / "helpers.py")
    _file(root / "data" / "lookup.csv")
    return root


def test_run_directories_and_the_inputs_and_outputs_they_name_stay_home(project: Path) -> None:
    # an earlier run with --run-dir inside the project, its input and output beside it
    _run_dir(project / "runs" / "monday", project / "orders.jsonl", project / "out" / "done.jsonl")
    _file(project / "orders.jsonl", b"{}\n" * 1000)
    _file(project / "out" / "done.jsonl", b"{}\n" * 1000)
    _file(project / ".shardflow" / "runs" / "r1" / "journal.jsonl")
    assert _shipped(project) == {"flows.py", "lib/helpers.py", "data/lookup.csv"}


def test_the_current_runs_data_stays_home_wherever_its_run_directory_lives(
        project: Path, tmp_path: Path) -> None:
    elsewhere = _run_dir(tmp_path / "runs" / "now", project / "in.jsonl", project / "res.jsonl")
    _file(project / "in.jsonl")
    _file(project / "res.jsonl")
    assert _shipped(project, skip=run_data(elsewhere)) == {
        "flows.py", "lib/helpers.py", "data/lookup.csv"}


def test_venvs_gitignored_files_and_excluded_patterns_stay_home(project: Path) -> None:
    _file(project / ".venv" / "lib" / "site.py")
    _file(project / ".git" / "HEAD")
    _file(project / "lib" / "__pycache__" / "helpers.cpython-311.pyc")
    _file(project / ".gitignore", b"*.parquet\n/scratch/\n")
    _file(project / "big.parquet")
    _file(project / "scratch" / "notes.txt")
    _file(project / "lib" / ".gitignore", b"generated_*.py\n")  # applies below lib/ only
    _file(project / "lib" / "generated_x.py")
    _file(project / "generated_y.py")
    _file(project / "data" / "huge.bin")
    shipped = _shipped(project, excludes=["data/*.bin"])
    assert shipped == {"flows.py", "lib/helpers.py", "data/lookup.csv", ".gitignore",
                       "lib/.gitignore", "generated_y.py"}


def test_unchanged_files_pack_to_the_same_bytes(project: Path, tmp_path: Path) -> None:
    """Ray names an upload by its hash: an unchanged directory is uploaded once."""
    first = pack(project, into=_file(tmp_path / "a" / "k").parent).path.read_bytes()
    os.utime(project / "flows.py", (1, 1))
    second = pack(project, into=_file(tmp_path / "b" / "k").parent).path.read_bytes()
    assert first == second


def test_a_directory_over_rays_cap_is_refused_in_one_line_naming_the_largest(
        project: Path) -> None:
    _file(project / "model.bin", os.urandom(300_000))  # incompressible
    with pytest.raises(ConfigError) as caught:
        pack(project, cap=200_000, into=project.parent)
    message = str(caught.value)
    assert "\n" not in message and "model.bin" in message and "--ray-exclude" in message
    assert caught.value.key == "ray.working_dir"


def test_the_package_says_how_much_it_ships(project: Path) -> None:
    package = pack(project, into=project.parent)
    assert package.files == 3
    assert "3 files" in package.describe() and "MiB" in package.describe()


@pytest.mark.parametrize(("target", "rebased"), [
    ("code/flows.py:workflow", "flows.py:workflow"),
    ("code/sub/more.py:wf", "sub/more.py:wf"),
])
def test_a_file_target_is_rebased_onto_the_shipped_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str, rebased: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "code").mkdir()
    assert rebase_target(target, tmp_path / "code") == rebased


def test_a_file_target_outside_the_shipped_directory_stays_absolute(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "code").mkdir()
    assert rebase_target("other/flows.py:wf", tmp_path / "code") == (
        f"{tmp_path.resolve() / 'other' / 'flows.py'}:wf")
