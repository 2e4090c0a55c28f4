"""Progress: a percentage and an ETA when the size of the input is known, the recent rate
next to the average, and plain lines when stderr is not a terminal."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from shardflow.batch.stats import RunStats
from shardflow.cli.progress import Progress, count_records, describe
from support.e2e import CliRun, write_jsonl

FLOWS = Path(__file__).parent / "flows.py"


def test_a_known_total_gives_percentage_and_eta() -> None:
    assert describe(1200, 5000, 40, 310.0, 290.0) == \
        "1,200/5,000 (24%), 40 in flight, 310/s now (290/s average), ETA 0:12"
    assert describe(1200, None, 40, 310.0, 290.0) == "1,200, 40 in flight, 310/s now (290/s average)"


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _stats(done: int, elapsed: float) -> RunStats:
    stats = RunStats()
    stats.counts["completed"] = done
    stats.ended = stats.started + elapsed
    return stats


def test_the_recent_rate_follows_a_run_that_slowed_down(caplog: pytest.LogCaptureFixture) -> None:
    clock = _Clock()
    progress = Progress(3000, every=5.0, terminal=False, clock=clock)
    with caplog.at_level(logging.INFO, logger="shardflow"):
        for second in range(1, 41):  # 100/s for 20 s, then 10/s
            clock.now += 1.0
            done = 100 * min(second, 20) + 10 * max(second - 20, 0)
            progress(_stats(done, second), 7)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 8  # one every 5 s
    assert lines[-1] == ("2,200/3,000 (73%), 7 in flight, 10/s now (55/s average), ETA 1:20, "
                         "elapsed 0:40")  # both times labelled


@pytest.mark.parametrize(("name", "text", "count"), [
    ("in.jsonl", '{"id": 1}\n{"id": 2}\n{"id": 3}\n', 3),
    ("in.jsonl", '{"id": 1}\n{"id": 2}', 2),
    ("in.csv", "id,name\n1,a\n2,b\n", 2),
    ("in.json", '[{"id": 1}]', None),
])
def test_records_of_a_file_are_counted(tmp_path: Path, name: str, text: str,
                                       count: int | None) -> None:
    path = tmp_path / name
    path.write_text(text)
    assert count_records(str(path), None) == count


def test_a_file_input_shows_its_percentage_off_a_terminal(cli: CliRun, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "in.jsonl", [{"id": i} for i in range(40)])
    proc = cli("run", f"{FLOWS}:slow", "--input", str(data), "-w", "1", "--max-in-flight", "2",
               "--progress-every", "0.2", "--output", str(tmp_path / "out.jsonl"),
               "--run-dir", str(tmp_path / "run"))
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines()
             if re.fullmatch(r"shardflow: \d+/40 \(\d+%\), \d+ in flight, .*/s now .*", line)]
    assert lines, proc.stderr
    assert any("ETA" in line for line in lines), lines
