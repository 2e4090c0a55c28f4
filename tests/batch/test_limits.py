"""Limits that hold across worker processes, rate limits, and the hard-timeout watchdog."""

from __future__ import annotations

from pathlib import Path

import orjson

from support.e2e import CliRun, by_id, flow, read_results


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals],
                    key=lambda ev: (ev[0], ev[1]))  # an end before a start at the same instant
    peak = current = 0
    for _, delta in events:
        current += delta
        peak = max(peak, current)
    return peak


def test_concurrency_limit_holds_across_workers(cli: CliRun, test_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    summary = tmp_path / "summary.json"
    proc = cli("run", flow("limited"), "--generate", "3000", "--output", str(out),
               "--workers", "2", "--limit", "email_api=7", "--summary-json", str(summary))
    assert proc.returncode == 0, proc.stderr
    assert len(by_id(read_results(out))) == 3000
    rows = [line.split() for line in (test_dir / "email.log").read_text().splitlines()]
    assert len(rows) == 3000
    assert len({pid for pid, _, _ in rows}) == 2  # both workers ran the step
    assert _max_overlap([(float(s), float(e)) for _, s, e in rows]) == 7
    report = orjson.loads(summary.read_bytes())["limits"]["email_api"]
    assert report["size"] == 7 and report["peak"] == 7
    assert report["seconds_at_capacity"] > 0 and report["mean_wait_ms"] > 0
    assert "limit email_api: size 7, peak 7" in proc.stderr


def test_rate_limit_holds_across_workers(cli: CliRun, test_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text('[run]\nworkers = 2\n\n[rate_limits]\nsms = "100/s burst 5"\n')
    out = tmp_path / "out.jsonl"
    summary = tmp_path / "summary.json"
    proc = cli("run", flow("rated"), "--generate", "200", "--output", str(out),
               "--config", str(config), "--summary-json", str(summary))
    assert proc.returncode == 0, proc.stderr
    starts = sorted(float(t) for t in (test_dir / "sms.log").read_text().split())
    assert len(starts) == 200
    # Over any window, starts <= rate * window + burst (with a margin for scheduling jitter).
    for i, first in enumerate(starts):
        for window in (0.1, 0.5, 1.0):
            count = sum(1 for t in starts[i:] if t - first <= window)
            assert count <= 100 * window + 5 + 2, (window, count)
    span = starts[-1] - starts[0]
    assert span >= (200 - 5) / 100 * 0.9  # it was throttled, not just started at once
    rate = orjson.loads(summary.read_bytes())["rate_limits"]["sms"]
    assert rate["starts"] == 200 and 80 <= rate["achieved_per_second"] <= 110


def test_two_limits_in_either_order_do_not_deadlock(cli: CliRun, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    proc = cli("run", flow("two_limits"), "--generate", "1000", "--output", str(out),
               "--workers", "2", "--limit", "a=1", "--limit", "b=2", timeout=120)
    assert proc.returncode == 0, proc.stderr
    results = by_id(read_results(out))
    assert len(results) == 1000 and all(r["status"] == "completed" for r in results.values())


def test_blocking_step_is_failed_by_the_hard_timeout(cli: CliRun, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    proc = cli("run", flow("blocking"), "--generate", "400", "--output", str(out),
               "--workers", "2", "--max-in-flight", "50", "--hard-timeout", "1", timeout=120)
    assert proc.returncode == 1, proc.stderr
    results = by_id(read_results(out))
    assert set(results) == set(range(400))
    assert results[3]["status"] == "failed"
    assert results[3]["error"]["type"] == "HardTimeout"
    assert results[3]["error"]["step"] == "double"
    assert all(r["status"] == "completed" for i, r in results.items() if i != 3)
    assert "1 hard timeouts" in proc.stderr
