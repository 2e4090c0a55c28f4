"""A summary you can act on: failures by step and error type, execution apart from waiting
for limits, retries per step, rate limits judged against their configured rate, and the
settings the run used."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from shardflow.batch.outcome import rate_reports
from support.e2e import CliRun, flow, read_results

FLOWS = Path(__file__).parent / "flows.py"


def _run(cli: CliRun, tmp_path: Path, target: str, *args: str) -> tuple[dict[str, Any], str, Path]:
    out = tmp_path / "out.jsonl"
    summary = tmp_path / "summary.json"
    proc = cli("run", target, "--no-progress", "--output", str(out), "--summary-json", str(summary),
               "--run-dir", str(tmp_path / "run"), *args)
    assert proc.returncode in (0, 1), proc.stderr
    return orjson.loads(summary.read_bytes()), proc.stderr, out


def test_failures_by_step_and_type_retries_and_settings(cli: CliRun, tmp_path: Path) -> None:
    summary, stderr, out = _run(cli, tmp_path, f"{FLOWS}:failing", "--generate", "12", "-w", "2",
                                "--max-in-flight", "7")
    # ids 1,3,5,7,9,11 fail with ValueError at check, 0 and 6 with KeyError
    assert summary["failures"] == {"check": {"ValueError": 6, "KeyError": 2}}
    assert "failed at check: ValueError 6, KeyError 2" in stderr
    retried = summary["steps"]["retried"]
    assert (retried["executions"], retried["retries"]) == (36, 24)
    assert summary["steps"]["check"]["retries"] == 0
    assert "retries: retried 24" in stderr
    # attempts: how many times the instance was dispatched -- once, however often a step retried
    assert {r["attempts"] for r in read_results(out)} == {1}
    config = summary["config"]
    assert (config["workers"], config["max_in_flight"], config["ordered"]) == (2, 7, False)
    assert config["limits"] == {} and config["hard_timeout"] == 60.0  # the default, as applied


def test_waiting_for_a_limit_is_not_execution_and_the_rate_is_judged_fairly(
        cli: CliRun, tmp_path: Path) -> None:
    """30 starts at 20/s with a burst of 10 take about one second: a mean of ~29/s that is
    the burst allowance, not a violation."""
    summary, stderr, _ = _run(cli, tmp_path, f"{FLOWS}:throttled", "--generate", "30", "-w", "1",
                              "--limit", "db=2", "--rate-limit", "api=20/s burst 10")
    step = summary["steps"]["throttled"]
    assert step["executions"] == 30
    assert step["mean_wait_ms"] > 100  # instances 11..30 wait 50..1000 ms for their start
    assert step["mean_ms"] < 50  # the step itself does nothing
    assert summary["slowest_steps"][0]["mean_ms"] == step["mean_ms"]
    rate = summary["rate_limits"]["api"]
    assert rate["held"] is True and rate["starts"] == 30 and rate["burst"] == 10
    assert rate["starts"] <= rate["allowed_starts"]
    assert "rate limit api: 20/s with a burst of 10: held (30 starts in" in stderr
    assert "waiting for limits (mean per execution, not counted as execution): throttled" in stderr
    assert summary["config"]["limits"] == {"db": 2}
    assert summary["config"]["rate_limits"] == {"api": "20/s burst 10"}


def test_instances_the_pool_gives_up_on_are_counted(cli: CliRun, tmp_path: Path) -> None:
    summary, _, _ = _run(cli, tmp_path, flow("always_crash"), "--generate", "8", "-w", "1")
    assert summary["failures"] == {"<worker>": {"WorkerLost": 1}}  # id 7 kills every worker


def test_a_rate_limit_over_its_allowance_is_reported_as_exceeded() -> None:
    rate = {"rate": "10/1s burst 1", "configured_per_second": 10.0, "burst": 1, "starts": 30,
            "window_seconds": 1.0, "achieved_per_second": 29.0}
    report = rate_reports({"limits": {}, "rate_limits": {"api": rate}})["api"]
    assert report["allowed_starts"] == 11 and report["held"] is False
