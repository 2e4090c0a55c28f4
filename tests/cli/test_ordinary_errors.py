"""Every ordinary error is one line and exit 2, before the run directory exists."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from support.e2e import CliRun, write_jsonl
from support.runs import run_flow

ECHO = run_flow("effect")


def _one_error_line(stderr: str, *needles: str) -> None:
    lines = [line for line in stderr.splitlines() if line.startswith("shardflow: error:")]
    assert len(lines) == 1 and lines[0] == stderr.splitlines()[-1], stderr
    for needle in needles:
        assert needle in lines[0], stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize("which", ["--output", "--summary-json"])
def test_a_missing_directory_is_one_line_and_no_run_dir(cli: CliRun, tmp_path: Path,
                                                        which: str) -> None:
    missing = tmp_path / "nowhere" / "file.json"
    args = ["--output", str(tmp_path / "out.jsonl"), "--summary-json", str(tmp_path / "s.json")]
    args[args.index(which) + 1] = str(missing)
    proc = cli("run", ECHO, "--generate", "3", "--workers", "1", "--no-progress",
               "--run-dir", str(tmp_path / "run"), *args)
    assert proc.returncode == 2
    _one_error_line(proc.stderr, str(tmp_path / "nowhere"), "does not exist")
    assert not (tmp_path / "run").exists() and not (tmp_path / ".shardflow").exists()


def test_output_equal_to_input_is_refused_and_the_input_kept(cli: CliRun, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "in.jsonl", [{"id": i} for i in range(3)])
    before = data.read_bytes()
    proc = cli("run", ECHO, "--input", str(data), "--output", str(data), "--workers", "1",
               "--run-dir", str(tmp_path / "run"))
    assert proc.returncode == 2
    _one_error_line(proc.stderr, "is the input")
    assert data.read_bytes() == before and not (tmp_path / "run").exists()


def test_an_unwritable_run_dir_parent_is_one_line(cli: CliRun, tmp_path: Path) -> None:
    parent = tmp_path / "file"
    parent.write_text("not a directory")
    proc = cli("run", ECHO, "--generate", "2", "--output", str(tmp_path / "out"),
               "--run-dir", str(parent / "run"))
    assert proc.returncode == 2
    _one_error_line(proc.stderr, "is not a directory")


def _finished_run(cli: CliRun, tmp_path: Path) -> Path:
    run_dir = tmp_path / "run"
    proc = cli("run", ECHO, "--generate", "4", "--workers", "1", "--no-progress",
               "--output", str(tmp_path / "out.jsonl"), "--run-dir", str(run_dir))
    assert proc.returncode == 0, proc.stderr
    record = orjson.loads((run_dir / "run.json").read_bytes())
    record["finished"] = False
    (run_dir / "run.json").write_bytes(orjson.dumps(record))
    return run_dir


@pytest.mark.parametrize(("tamper", "needle"), [
    (lambda raw: raw[: len(raw) // 2], "is truncated or not JSON"),
    (lambda raw: orjson.dumps({**orjson.loads(raw), "shell": "rm -rf /"}), "'shell': unknown key"),
    (lambda raw: orjson.dumps({**orjson.loads(raw), "target": ["x"]}),
     "'target': expected str, got list"),
], ids=["truncated", "unknown-key", "wrong-type"])
def test_a_damaged_run_json_is_one_line(cli: CliRun, tmp_path: Path, tamper: object,
                                        needle: str) -> None:
    run_dir = _finished_run(cli, tmp_path)
    file = run_dir / "run.json"
    assert callable(tamper)
    file.write_bytes(tamper(file.read_bytes()))
    proc = cli("resume", str(run_dir), "--no-progress")
    assert proc.returncode == 2
    _one_error_line(proc.stderr, str(file), needle)
    debug = cli("--debug", "resume", str(run_dir), "--no-progress")
    assert debug.returncode == 2 and "Traceback" in debug.stderr


def test_a_corrupt_tasks_db_is_one_line(cli: CliRun, tmp_path: Path) -> None:
    run_dir = _finished_run(cli, tmp_path)
    db = run_dir / "tasks.db"
    db.write_bytes(b"this is not sqlite" * 100)
    for args in (["tasks", "list", str(run_dir)], ["resume", str(run_dir), "--no-progress"],
                 ["tasks", "complete", "t1", "--data", "{}", "--run-dir", str(run_dir)]):
        proc = cli(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        _one_error_line(proc.stderr, str(db), "damaged")


def test_a_missing_data_file_for_tasks_complete_is_one_line(cli: CliRun, tmp_path: Path) -> None:
    proc = cli("tasks", "complete", "t1", "--data-file", str(tmp_path / "missing.json"))
    assert proc.returncode == 2
    _one_error_line(proc.stderr, "missing.json", "No such file")


def test_an_unusable_default_run_directory_is_one_line_and_the_output_is_kept(
        cli: CliRun, tmp_path: Path, test_dir: Path) -> None:
    """Without --run-dir the default place (.shardflow/runs/ID) is checked too, before the
    output is touched."""
    (test_dir / ".shardflow").write_text("not a directory")
    out = tmp_path / "out.jsonl"
    out.write_text("the user's earlier results\n")
    proc = cli("run", ECHO, "--generate", "3", "--workers", "1", "--no-progress",
               "--output", str(out))
    assert proc.returncode == 2, proc.stderr
    _one_error_line(proc.stderr, ".shardflow", "not a directory")
    assert out.read_text() == "the user's earlier results\n"
