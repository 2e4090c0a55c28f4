"""End to end: streams stay streams, --ordered holds across a crash, typed human-task ids."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import orjson
import pytest

from support.e2e import CliRun, by_id, read_results, write_jsonl
from support.runs import Hold, Start, run_flow

EFFECT = run_flow("effect")


def test_a_fifo_output_stays_a_fifo_and_resume_says_it_is_a_stream(
        cli: CliRun, tmp_path: Path) -> None:
    fifo = tmp_path / "results.fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    proc = cli("run", EFFECT, "--generate", "30", "--workers", "1", "--no-progress",
               "--output", str(fifo), "--run-dir", str(tmp_path / "run"))
    reader.join(timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert sorted(orjson.loads(x)["id"] for x in got[0].splitlines()) == list(range(30))
    record = orjson.loads((tmp_path / "run" / "run.json").read_bytes())
    assert record["stream"] is True and record["output"] == str(fifo)


def test_a_device_node_output_stays_a_device(cli: CliRun, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mknod of a character device needs root")
    null = tmp_path / "null"
    os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    proc = cli("run", EFFECT, "--generate", "30", "--workers", "1", "--no-progress",
               "--output", str(null), "--run-dir", str(tmp_path / "run"))
    assert proc.returncode == 0, proc.stderr
    info = null.stat()
    assert stat.S_ISCHR(info.st_mode) and info.st_rdev == os.makedev(1, 3)


def test_ordered_output_is_in_input_order_after_a_crash_and_resume(
        cli: CliRun, start: Start, tmp_path: Path, test_dir: Path) -> None:
    n = 400
    out = tmp_path / "out.jsonl"
    hold = Hold(test_dir, at=150)
    proc = start("run", EFFECT, "--generate", str(n), "--workers", "2", "--max-in-flight", "20",
                 "--ordered", "--no-progress", "--output", str(out),
                 "--run-dir", str(tmp_path / "run"), env=hold.env)
    hold.wait()  # the other worker goes on: results after 150 are journalled, held back
    proc.kill()
    proc.wait(timeout=30)
    hold.release()
    proc.communicate(timeout=30)
    resumed = cli("resume", str(tmp_path / "run"), "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert [r["id"] for r in read_results(out)] == list(range(n))


def test_ids_1_and_string_1_wait_and_resume_as_two_instances(cli: CliRun, tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", [{"id": 1}, {"id": "1"}])
    out = tmp_path / "out.jsonl"
    run_dir = tmp_path / "run"
    proc = cli("run", "shardflow.examples.approvals:workflow", "--input", str(inp),
               "--output", str(out), "--workers", "1", "--no-progress", "--run-dir", str(run_dir))
    assert proc.returncode == 0, proc.stderr
    listed = cli("tasks", "list", str(run_dir), "--json")
    tasks = [orjson.loads(line) for line in listed.stdout.splitlines()]
    assert len(tasks) == 6 and {t["instance_id"] for t in tasks} == {"1", '"1"'}
    for task in tasks:
        data = {"approved": True, **({"risk_level": "low"} if task["step"] == "security_approval"
                                     else {})}
        done = cli("tasks", "complete", task["id"], "--data", orjson.dumps(data).decode(),
                   "--run-dir", str(run_dir))
        assert done.returncode == 0, done.stderr
    resumed = cli("resume", str(run_dir), "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    final = [r for r in read_results(out) if r["status"] != "waiting"]
    assert sorted((type(r["id"]).__name__, r["status"]) for r in final) == [
        ("int", "completed"), ("str", "completed")]
    assert by_id(final)


def test_process_substitution_output_is_a_stream(tmp_path: Path, test_dir: Path) -> None:
    copy = tmp_path / "copy.jsonl"
    script = (f'{sys.executable} -m shardflow run {EFFECT} --generate 20 --workers 1 '
              f'--no-progress --run-dir {tmp_path / "run"} --output >(cat > {copy}); '
              'code=$?; wait; exit $code')
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "SHARDFLOW_TEST_DIR": str(test_dir)}, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted(r["id"] for r in read_results(copy)) == list(range(20))


def test_resume_of_a_stream_output_writes_only_what_it_runs_and_says_so(
        cli: CliRun, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    first = cli("run", EFFECT, "--generate", "20", "--workers", "1", "--no-progress",
                "--run-dir", str(run_dir))
    assert first.returncode == 0 and len(first.stdout.splitlines()) == 20
    journal = run_dir / "journal.jsonl"
    journal.write_bytes(b"".join(journal.read_bytes().splitlines(keepends=True)[:15]))
    record = orjson.loads((run_dir / "run.json").read_bytes())
    record["finished"] = False
    (run_dir / "run.json").write_bytes(orjson.dumps(record))
    resumed = cli("resume", str(run_dir), "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert "output stdout is a stream: this session writes only its own results" in resumed.stderr
    assert len(resumed.stdout.splitlines()) == 5
