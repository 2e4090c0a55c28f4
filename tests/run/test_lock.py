"""One process at a time per run: a second resume, or a resume beside the live run, is
refused with exit 2 naming the holder, and nothing runs twice."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from support.e2e import CliRun, by_id, read_results
from support.runs import Hold, Start, effects, run_flow

N = 120
EFFECT = run_flow("effect")


def _run_args(tmp_path: Path) -> list[str]:
    return ["run", EFFECT, "--generate", str(N), "--workers", "1", "--max-in-flight", "1",
            "--no-progress", "--output", str(tmp_path / "out.jsonl"),
            "--run-dir", str(tmp_path / "run")]


def test_resume_beside_a_live_run_is_refused(cli: CliRun, start: Start, tmp_path: Path,
                                             test_dir: Path) -> None:
    hold = Hold(test_dir, at=40)
    live = start(*_run_args(tmp_path), env=hold.env)
    hold.wait()
    refused = cli("resume", str(tmp_path / "run"), "--no-progress")
    assert refused.returncode == 2
    assert f"is in use by process {live.pid}" in refused.stderr.splitlines()[-1]
    hold.release()
    _, err = live.communicate(timeout=120)
    assert live.returncode == 0, err
    assert sorted(by_id(read_results(tmp_path / "out.jsonl"))) == list(range(N))
    assert sorted(Counter(effects(test_dir)).values()) == [1] * N


def test_two_concurrent_resumes_run_nothing_twice(cli: CliRun, start: Start, tmp_path: Path,
                                                  test_dir: Path) -> None:
    crash = Hold(test_dir, at=30, tag="crash")
    first = start(*_run_args(tmp_path), env=crash.env)
    crash.wait()
    first.kill()  # the coordinator dies with instance 30 in flight
    first.wait(timeout=30)
    crash.release()  # its worker, orphaned, sees its socket closed and exits
    first.communicate(timeout=30)  # EOF on stderr: the worker is gone too
    ran_before = Counter(effects(test_dir))

    hold = Hold(test_dir, at=80)
    one = start("resume", str(tmp_path / "run"), "--no-progress", env=hold.env)
    hold.wait()
    two = cli("resume", str(tmp_path / "run"), "--no-progress")
    assert two.returncode == 2 and f"in use by process {one.pid}" in two.stderr
    hold.release()
    _, err = one.communicate(timeout=120)
    assert one.returncode == 0, err
    assert sorted(by_id(read_results(tmp_path / "out.jsonl"))) == list(range(N))
    ran = Counter(effects(test_dir))
    assert set(ran) == {str(i) for i in range(N)}
    twice = {i for i, count in ran.items() if count > 1}
    assert twice <= {"30"} and all(c == 1 for i, c in ran_before.items() if i != "30")
