"""Resume trusts only what it verified: damage before the last journal line stops it (exit 2,
file and line named) unless --repair; duplicates change nothing; a finished run stays as it
is; the run directory is private and names the workflow it will import."""

from __future__ import annotations

import os
import stat
from collections import Counter
from pathlib import Path

import orjson
import pytest

from shardflow.engine.results import Status, lost_line
from shardflow.run import JournalDamagedError, ResumeRequest, resume_run
from shardflow.store.journal import encode_entry
from support.e2e import CliRun, by_id, read_results
from support.runs import effects, run_flow

N = 60
EFFECT = run_flow("effect")


def _run(cli: CliRun, tmp_path: Path, *extra: str) -> Path:
    run_dir = tmp_path / "run"
    proc = cli("run", EFFECT, "--generate", str(N), "--workers", "1", "--no-progress",
               "--output", str(tmp_path / "out.jsonl"), "--run-dir", str(run_dir), *extra)
    assert proc.returncode == 0, proc.stderr
    return run_dir


def _unfinish(run_dir: Path) -> None:
    record = orjson.loads((run_dir / "run.json").read_bytes())
    record["finished"] = False
    (run_dir / "run.json").write_bytes(orjson.dumps(record))


@pytest.mark.parametrize("finished", [True, False], ids=["finished", "unfinished"])
def test_damage_in_the_middle_stops_resume_then_repair_reruns_only_it(
        cli: CliRun, tmp_path: Path, test_dir: Path, finished: bool) -> None:
    run_dir = _run(cli, tmp_path)
    if not finished:
        _unfinish(run_dir)
    journal = run_dir / "journal.jsonl"
    lines = journal.read_bytes().splitlines(keepends=True)
    damaged_seq = int(lines[19].split(b"\t")[0])
    lines[19] = b"garbage that is no entry\n"
    journal.write_bytes(b"".join(lines))
    out = tmp_path / "out.jsonl"
    before = out.read_bytes()

    stopped = cli("resume", str(run_dir), "--no-progress")
    assert stopped.returncode == 2
    assert f"{journal}:20: not a journal entry" in stopped.stderr and "--repair" in stopped.stderr
    assert out.read_bytes() == before and journal.read_bytes() == b"".join(lines)

    repaired = cli("resume", str(run_dir), "--repair", "--no-progress")
    assert repaired.returncode == 0, repaired.stderr
    assert "dropped 1 damaged line" in repaired.stderr
    results = by_id(read_results(out))
    assert sorted(results) == list(range(N))
    assert all(r["status"] == "completed" for r in results.values())
    ran = Counter(effects(test_dir))
    assert ran[str(damaged_seq)] == 2 and sum(ran.values()) == N + 1
    again = cli("resume", str(run_dir), "--no-progress")
    assert again.returncode == 0 and "already finished" in again.stderr


def test_duplicated_and_forged_entries_never_reach_the_output(
        cli: CliRun, tmp_path: Path) -> None:
    run_dir = _run(cli, tmp_path)
    _unfinish(run_dir)
    journal = run_dir / "journal.jsonl"
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(b"".join(lines + lines[:5]))  # five entries twice: idempotent
    out = tmp_path / "out.jsonl"
    out.write_bytes(b"")
    resumed = cli("resume", str(run_dir), "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(by_id(read_results(out))) == list(range(N))


def test_resuming_a_finished_run_changes_nothing_on_disk(cli: CliRun, tmp_path: Path) -> None:
    run_dir = _run(cli, tmp_path)
    files = [tmp_path / "out.jsonl", run_dir / "journal.jsonl", run_dir / "run.json",
             run_dir / "summary.json"]
    before = [(f.read_bytes(), f.stat().st_mtime_ns, f.stat().st_ino) for f in files]
    proc = cli("resume", str(run_dir), "--no-progress")
    assert proc.returncode == 0 and "already finished" in proc.stderr
    assert [(f.read_bytes(), f.stat().st_mtime_ns, f.stat().st_ino) for f in files] == before


def test_the_run_directory_is_private_and_resume_names_the_target(
        cli: CliRun, tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        run_dir = _run(cli, tmp_path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
    for name in ("run.json", "journal.jsonl", "summary.json", "run.lock"):
        assert stat.S_IMODE((run_dir / name).stat().st_mode) == 0o600, name
    record = orjson.loads((run_dir / "run.json").read_bytes())
    assert record["target"] == EFFECT
    _unfinish(run_dir)
    proc = cli("resume", str(run_dir), "--no-progress")
    assert f"ran workflow {EFFECT}; importing it" in proc.stderr


def test_a_run_json_owned_by_someone_else_is_refused(cli: CliRun, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("chown to another user needs root")
    run_dir = _run(cli, tmp_path)
    _unfinish(run_dir)
    os.chown(run_dir / "run.json", 12345, 12345)
    proc = cli("resume", str(run_dir), "--no-progress")
    assert proc.returncode == 2 and "owned by uid 12345" in proc.stderr


def test_retry_failed_replaces_the_failed_records(cli: CliRun, tmp_path: Path,
                                                  test_dir: Path) -> None:
    inp = tmp_path / "in.jsonl"
    inp.write_bytes(b"".join(orjson.dumps({"id": i, "value": i}) + b"\n" for i in range(20)))
    out = tmp_path / "out.jsonl"
    first = cli("run", run_flow("fail_odd"), "--input", str(inp), "--output", str(out),
                "--workers", "1", "--no-progress", "--run-dir", str(tmp_path / "run"))
    assert first.returncode == 1
    (test_dir / "fixed.marker").touch()
    retried = cli("resume", str(tmp_path / "run"), "--retry-failed", "--no-progress")
    assert retried.returncode == 0, retried.stderr
    assert "retrying 10 failed instances" in retried.stderr
    results = by_id(read_results(out))
    assert sorted(results) == list(range(20))
    assert {r["status"] for r in results.values()} == {"completed"}
    ran = Counter(effects(test_dir))
    assert all(ran[str(i)] == (2 if i % 2 else 1) for i in range(20))


def test_a_refused_resume_releases_the_run_for_the_next_call(cli: CliRun, tmp_path: Path) -> None:
    """resume_run is API: after it refuses (damage), the same process may try again and is
    refused for the same reason, not by its own leftover lock."""
    run_dir = _run(cli, tmp_path)
    journal = run_dir / "journal.jsonl"
    lines = journal.read_bytes().splitlines(keepends=True)
    lines[5] = b"garbage that is no entry\n"
    journal.write_bytes(b"".join(lines))
    for _ in range(2):
        with pytest.raises(JournalDamagedError):
            resume_run(ResumeRequest(str(run_dir)))


def test_repair_and_retry_failed_together_retry_the_failed_instances(
        cli: CliRun, tmp_path: Path, test_dir: Path) -> None:
    run_dir = _run(cli, tmp_path)
    journal = run_dir / "journal.jsonl"
    lines = journal.read_bytes().splitlines(keepends=True)
    # make instance seq 30 a failure (a well-formed entry), and line 3 garbage
    seq = int(lines[30].split(b"\t")[0])
    line = lost_line(seq, b'{"id": %d}' % seq, "WorkerLost", "gone", 1)
    lines[30] = encode_entry(seq, int(Status.FAILED), line)
    lines[3] = b"garbage that is no entry\n"
    journal.write_bytes(b"".join(lines))
    proc = cli("resume", str(run_dir), "--repair", "--retry-failed", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    results = by_id(read_results(tmp_path / "out.jsonl"))
    assert sorted(results) == list(range(N))
    assert all(r["status"] == "completed" for r in results.values()), proc.stderr
