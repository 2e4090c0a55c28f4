"""A newcomer's first hour (issue 23): failures you can find, retries that count, one rule
for exit codes, flags that go anywhere, errors that name what the user wrote, ``validate``
that says what ``run`` refuses, and "did you mean" for the usual typos."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from shardflow.store.journal import Entry, scan_journal
from support.e2e import CliRun, read_results
from support.runs import run_flow

ROOT = Path(__file__).parent.parent.parent
FLOWS = Path(__file__).parent / "flows.py"


def _failing_run(cli: CliRun, tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    run_dir = tmp_path / "runs" / "failing"
    proc = cli("run", f"{FLOWS}:failing", "--generate", "12", "-w", "1", "--no-progress",
               "--output", str(tmp_path / "out.jsonl"), "--run-dir", str(run_dir))
    assert proc.returncode == 1, proc.stderr
    return proc, run_dir


def test_the_summary_names_failing_ids_and_messages_and_how_to_list_them(
        cli: CliRun, tmp_path: Path) -> None:
    proc, run_dir = _failing_run(cli, tmp_path)
    # ids 1,3,5,7,9,11 fail with ValueError('odd'), 0 and 6 with KeyError('third')
    assert "check ValueError x6: odd (ids 1, 3, 5, ...)" in proc.stderr
    assert "check KeyError x2: 'third' (ids 0, 6)" in proc.stderr
    assert f"shardflow runs show {run_dir} --failed" in proc.stderr
    summary = orjson.loads((run_dir / "summary.json").read_bytes())
    assert summary["failure_examples"][0] == {"step": "check", "type": "ValueError",
                                              "message": "odd", "count": 6, "ids": [1, 3, 5]}

    listed = cli("runs", "show", str(run_dir), "--failed")
    rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert sorted(int(r[0]) for r in rows) == [0, 1, 3, 5, 6, 7, 9, 11]
    assert ["1", "check", "ValueError", "odd"] in rows
    as_json = cli("runs", "show", "failing", "--failed", "--json")  # by name: a --run-dir run seen here
    records = [orjson.loads(line) for line in as_json.stdout.splitlines()]
    assert {r["id"]: r["message"] for r in records}[6] == "'third'"
    assert all(r["status"] == "failed" and r["attempts"] == 1 for r in records)

    shown = cli("runs", "show", str(run_dir))
    assert f"{FLOWS}:failing" in shown.stdout and "completed 4, failed 8" in shown.stdout
    assert "check ValueError x6: odd" in shown.stdout


def test_runs_list_shows_workflow_status_output_and_the_run_dir_runs_seen_here(
        cli: CliRun, tmp_path: Path) -> None:
    _failing_run(cli, tmp_path)
    default = cli("run", f"{FLOWS}:noisy", "--generate", "2", "-w", "1", "--no-progress",
                  "-o", str(tmp_path / "noisy.jsonl"))
    assert default.returncode == 0, default.stderr
    listed = cli("runs", "list")
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["RUN", "WORKFLOW", "STATUS", "COUNTS", "OUTPUT", "AGE", "SIZE"]
    assert len(lines) == 3, listed.stdout
    failing = next(line for line in lines if "failing" in line)
    for needle in (f"{FLOWS}:failing", "finished", "completed 4, failed 8", str(tmp_path / "out.jsonl")):
        assert needle in failing
    as_json = [orjson.loads(line) for line in cli("runs", "list", "--json").stdout.splitlines()]
    assert {r["workflow"] for r in as_json} == {f"{FLOWS}:failing", f"{FLOWS}:noisy"}


def _journal_attempts(run_dir: Path, instance_id: int) -> list[int]:
    attempts = []
    for item in scan_journal(run_dir / "journal.jsonl"):
        if isinstance(item, Entry) and item.line[:1] == b"{":
            record = orjson.loads(item.line)
            if record["id"] == instance_id:
                attempts.append(record["attempts"])
    return attempts


def test_retry_failed_counts_attempts_and_exit_codes_describe_the_whole_run(
        cli: CliRun, tmp_path: Path, test_dir: Path) -> None:
    inp = tmp_path / "in.jsonl"
    inp.write_bytes(b"".join(orjson.dumps({"id": i, "value": i}) + b"\n" for i in range(4)))
    out, run_dir = tmp_path / "out.jsonl", tmp_path / "run"
    first = cli("run", run_flow("fail_odd"), "-i", str(inp), "-o", str(out), "-w", "1",
                "--no-progress", "--run-dir", str(run_dir))
    assert first.returncode == 1
    for expected in (2, 3):  # still failing: each retry is one more attempt
        retried = cli("resume", str(run_dir), "--retry-failed", "--no-progress")
        assert retried.returncode == 1, retried.stderr
        results = {r["id"]: r for r in read_results(out)}
        assert [results[i]["attempts"] for i in range(4)] == [1, expected, 1, expected]
    assert _journal_attempts(run_dir, 1) == [1, 2, 3]
    assert "retrying 2 failed instances" in retried.stderr

    again = cli("resume", str(run_dir), "--no-progress")  # finished, with failures: still 1
    assert again.returncode == 1 and "already finished" in again.stderr
    assert "completed 2, failed 2" in again.stderr
    (test_dir / "fixed.marker").touch()
    fixed = cli("resume", str(run_dir), "--retry-failed", "--no-progress")
    assert fixed.returncode == 0, fixed.stderr
    assert {r["id"]: r["attempts"] for r in read_results(out)} == {0: 1, 1: 4, 2: 1, 3: 4}
    assert cli("resume", str(run_dir), "--no-progress").returncode == 0


@pytest.mark.parametrize("args", [["--debug", "validate", "X"], ["validate", "X", "--debug"],
                                  ["validate", "--debug", "X"]], ids=["before", "after", "between"])
def test_debug_goes_before_or_after_the_subcommand(cli: CliRun, args: list[str]) -> None:
    proc = cli(*[f"{FLOWS}:nope" if a == "X" else a for a in args])
    assert proc.returncode == 2
    assert "Traceback (most recent call last)" in proc.stderr
    assert "has no attribute 'nope'" in proc.stderr


def test_verbose_and_quiet_go_before_or_after_the_subcommand(cli: CliRun, tmp_path: Path) -> None:
    base = ["--generate", "2", "-w", "1", "--no-progress", "-o", str(tmp_path / "o.jsonl")]
    quiet_after = cli("run", f"{FLOWS}:noisy", *base, "-q")
    quiet_before = cli("-q", "run", f"{FLOWS}:noisy", *base)
    for proc in (quiet_after, quiet_before):
        assert proc.returncode == 0, proc.stderr
        assert "instances in" not in proc.stderr  # the INFO summary is hidden
    contradiction = cli("-v", "run", f"{FLOWS}:noisy", *base, "-q")
    assert contradiction.returncode == 2 and "contradict" in contradiction.stderr


def test_errors_name_the_flag_the_variable_or_the_file_the_user_wrote(
        cli: CliRun, tmp_path: Path) -> None:
    target = f"{FLOWS}:throttled"
    missing = cli("run", target, "--input", "order.jsonl", "--limit", "db=1", "--rate-limit", "api=9/s")
    assert missing.returncode == 2
    assert "shardflow: error: --input: input file 'order.jsonl' does not exist" in missing.stderr
    assert "config" not in missing.stderr
    bad_limit = cli("run", target, "--generate", "1", "--limit", "db=x")
    assert "shardflow: error: --limit db: expected an integer >= 1, got 'x'" in bad_limit.stderr
    from_env = cli("run", target, "--generate", "1", env={"SHARDFLOW_LIMIT": "db=0"})
    assert "shardflow: error: SHARDFLOW_LIMIT (db): expected an integer >= 1, got 0" in from_env.stderr
    config = tmp_path / "run.toml"
    config.write_text("[limits]\ndb = 0\n")
    from_file = cli("run", target, "--generate", "1", "--config", str(config))
    assert f"shardflow: error: {config}: config 'limits.db': expected an integer >= 1" in from_file.stderr
    no_tasks = cli("tasks", "list")
    assert no_tasks.returncode == 2
    assert no_tasks.stderr.strip() == ("shardflow: error: no run with human tasks under "
                                       ".shardflow/runs; pass RUN_DIR")
    ran = cli("run", f"{FLOWS}:noisy", "--generate", "1", "-w", "1", "--no-progress",
              "-o", str(tmp_path / "o.jsonl"), "--run-dir", str(tmp_path / "r"))
    assert ran.returncode == 0, ran.stderr
    other = cli("run", target, "--resume", str(tmp_path / "r"))
    assert other.returncode == 2
    error = other.stderr.splitlines()[-1]
    assert error.startswith("shardflow: error: run ") and "config" not in error


def test_validate_reports_what_run_would_refuse(cli: CliRun, tmp_path: Path) -> None:
    target = f"{FLOWS}:throttled"  # its step uses limit db and rate limit api
    unsized = cli("validate", target)
    assert unsized.returncode == 1
    assert "valid (" not in unsized.stdout
    assert "declares limit 'db', but the run sets no size for it" in unsized.stderr
    assert "declares rate_limit 'api'" in unsized.stderr and "(2 problems)" in unsized.stderr
    sized = cli("validate", target, "--limit", "db=2", "--rate-limit", "api=10/s")
    assert sized.returncode == 0, sized.stderr
    assert sized.stdout.startswith("throttled 1.0.0: valid (1 node, 0 edges)")
    config = tmp_path / "limits.toml"
    config.write_text('[limits]\ndb = 2\n[rate_limits]\napi = "10/s"\n')
    assert cli("validate", target, "-c", str(config)).returncode == 0


def test_did_you_mean(cli: CliRun, tmp_path: Path) -> None:
    attribute = cli("run", f"{FLOWS}:failng", "--generate", "1")
    assert "has no attribute 'failng' (did you mean 'failing'?)" in attribute.stderr
    command = cli("rnu", "x")
    assert command.returncode == 2 and "no such command 'rnu' (did you mean 'run'?)" in command.stderr
    option = cli("run", f"{FLOWS}:failing", "--wokers", "2")
    assert "Did you mean '--workers'?" in option.stderr
    config = tmp_path / "run.toml"
    config.write_text("[run]\nworkres = 2\n")
    key = cli("run", f"{FLOWS}:failing", "--generate", "1", "-c", str(config))
    assert "unknown setting (did you mean 'workers'?)" in key.stderr
    code = ("from shardflow import *\n"
            "class A(BaseMachineStep):\n"
            "    name = 'process'\n"
            "    async def execute(self, context): pass\n"
            "w = WorkflowDefinition(name='orders', steps={'process': A()}, edges=[],\n"
            "                       initial_step='proces', terminal_steps={'process'})\n"
            "print(w.validate()[0])\n"
            "r = WorkflowRegistry()\n"
            "try:\n"
            "    r.get_definition('ordres')\n"
            "except WorkflowNotFoundError as e:\n"
            "    print(e)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert "Initial step 'proces' not found in steps (did you mean 'process'?)" in proc.stdout
    assert "Workflow 'ordres' not found" in proc.stdout


def test_bench_reports_the_median_and_spread_of_rounds_and_measures_a_target(
        cli: CliRun) -> None:
    builtin = cli("bench", "-n", "2000", "-w", "1", "--rounds", "2", "--baseline", "--json")
    assert builtin.returncode == 0, builtin.stderr
    report: dict[str, Any] = orjson.loads(builtin.stdout)
    assert len(report["rounds"]) == 2
    ratio = report["ratio"]
    assert ratio["min"] <= ratio["median"] <= ratio["max"]
    assert sorted(r["ratio"] for r in report["rounds"]) == [ratio["min"], ratio["max"]]
    own = cli("bench", f"{FLOWS}:throttled", "-n", "20", "-w", "1", "--rounds", "2",
              "--limit", "db=2", "--rate-limit", "api=1000/s")
    assert own.returncode == 0, own.stderr
    assert "throttled: 20 instances from generated inputs, 1 worker" in own.stdout
    assert "instances/s (median; lowest" in own.stdout and "completed 20" in own.stdout
    refused = cli("bench", f"{FLOWS}:throttled", "-n", "5", "-w", "1")
    assert refused.returncode == 2 and "declares limit 'db'" in refused.stderr


def test_the_readme_benchmark_command_collects_the_benchmarks() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "python -m pytest benchmarks" in readme
    proc = subprocess.run([sys.executable, "-m", "pytest", "benchmarks", "--collect-only", "-q"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "bench_engine.py::" in proc.stdout and "bench_batch.py::" in proc.stdout


def test_resume_progress_counts_against_what_is_left(cli: CliRun, tmp_path: Path) -> None:
    inp = tmp_path / "in.jsonl"
    inp.write_bytes(b"".join(orjson.dumps({"id": i}) + b"\n" for i in range(40)))
    run_dir = tmp_path / "run"
    first = cli("run", f"{FLOWS}:noisy", "-i", str(inp), "-o", str(tmp_path / "o.jsonl"),
                "-w", "1", "--no-progress", "--run-dir", str(run_dir))
    assert first.returncode == 0, first.stderr
    journal = run_dir / "journal.jsonl"  # a crash after 10 results: the rest is not journalled
    journal.write_bytes(b"".join(journal.read_bytes().splitlines(keepends=True)[:10]))
    record = orjson.loads((run_dir / "run.json").read_bytes())
    (run_dir / "run.json").write_bytes(orjson.dumps({**record, "finished": False}))
    resumed = cli("resume", str(run_dir), "--progress-every", "0.001")
    assert resumed.returncode == 0, resumed.stderr
    assert "30/30 (100%)" in resumed.stderr and "elapsed" in resumed.stderr


def test_log_messages_go_to_the_stderr_of_the_moment(monkeypatch: pytest.MonkeyPatch) -> None:
    """While the progress bar is on screen rich replaces sys.stderr to print messages above
    the bar: the handler must write there, not to the stream it saw when logging started."""
    import io
    import logging

    from shardflow.cli.logging_setup import configure

    logger = logging.getLogger("shardflow")
    for attribute in ("handlers", "propagate", "level"):  # put back after the test
        monkeypatch.setattr(logger, attribute, getattr(logger, attribute))
    configure(logging.INFO)
    later = io.StringIO()
    monkeypatch.setattr(sys, "stderr", later)
    logger.warning("interrupted; letting 3 instances finish")
    assert later.getvalue() == "shardflow: warning: interrupted; letting 3 instances finish\n"
