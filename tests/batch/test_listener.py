"""The pool's listener and the coordinator's failed writes: a write that fails is never taken
for a worker's death, nothing runs twice, and the run ends with the error named."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shardflow.batch.config import RunConfig
from shardflow.batch.coordinator import Coordinator, RunOutcome
from shardflow.batch.jobs import Feed, Job
from shardflow.batch.pool import WorkerPool
from shardflow.batch.spec import WorkerSpec
from shardflow.engine.results import Status, invalid_line, parse_line
from shardflow.run.journal_ledger import JournalLedger
from shardflow.store.journal import FileJournal
from support.e2e import write_jsonl
from support.listeners import QuietListener

COUNTED = f"{Path(__file__).parent / 'flows_core.py'}:counted"
N = 5000


def _runs(directory: Path) -> list[int]:
    """Ids the ``counted`` step executed, once per execution."""
    path = directory / "runs.log"
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def _inputs(count: int) -> Iterator[Job]:
    return (Job(i, i, b'{"id":%d}' % i) for i in range(count))


class _Sink:
    """An output whose second write fails with ``error`` (and every one after it)."""

    def __init__(self, error: OSError) -> None:
        self.error = error
        self.lines: list[bytes] = []
        self.writes = 0

    def write(self, line: bytes) -> None:
        self.write_many([line])

    def write_many(self, lines: list[bytes]) -> None:
        self.writes += 1
        if self.writes >= 2:
            raise self.error
        self.lines += lines

    def flush(self) -> None:
        if self.writes >= 2:
            raise self.error

    def close(self) -> None:
        pass


class _Journal(FileJournal):
    """A file journal that remembers what it made durable, and can fail a flush."""

    def __init__(self, path: Path, fail_at_flush: int | None = None) -> None:
        super().__init__(path)
        self.fail_at_flush = fail_at_flush
        self.flushes = 0
        self.entries: list[tuple[int, int, bytes]] = []
        self.durable: list[bytes] = []

    def append(self, seq: int, status: int, line: bytes) -> None:
        self.append_many([(seq, status, line)])

    def append_many(self, entries: list[tuple[int, int, bytes]]) -> None:
        super().append_many(entries)
        self.entries += entries

    def append_results(self, rows: list[list[Any]], lines: list[bytes]) -> None:
        super().append_results(rows, lines)
        self.entries += [(row[0], row[1], line) for row, line in zip(rows, lines, strict=True)]

    def flush(self) -> None:
        self.flushes += 1
        if self.fail_at_flush is not None and self.flushes >= self.fail_at_flush:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        super().flush()
        self.durable = [line for _, _, line in self.entries]


def _no_task_store() -> Any:
    raise AssertionError("the counted workflow has no human steps")


def _coordinate(run: Any, sink: Any, journal: _Journal) -> RunOutcome:
    ledger = JournalLedger(journal, _no_task_store, "counted", "1")
    coordinator = Coordinator(COUNTED, RunConfig(workers=2, max_in_flight=50), sink,
                              ledger=ledger, output_name="out.jsonl")
    try:
        outcome: RunOutcome = run(coordinator.run(_inputs(N)))
    finally:
        journal.fail_at_flush = None
        journal.close()
    return outcome


@pytest.mark.parametrize("code", [errno.EPIPE, errno.ENOSPC])
def test_a_failed_output_write_stops_input_and_lets_in_flight_work_finish_into_the_journal(
        run: Any, test_dir: Path, tmp_path: Path, code: int) -> None:
    error = BrokenPipeError(code, os.strerror(code)) if code == errno.EPIPE else OSError(
        code, os.strerror(code))
    journal = _Journal(tmp_path / "journal")
    sink = _Sink(error)
    outcome = _coordinate(run, sink, journal)
    assert outcome.output_error is not None and outcome.output_error.error is error
    assert outcome.output_error.path == "out.jsonl"
    assert outcome.output_error.errno_name == errno.errorcode[code]
    assert outcome.journal_error is None and outcome.restarts == 0
    runs = _runs(test_dir)
    assert len(runs) == len(set(runs)), "an instance ran twice"
    assert len(runs) < N, "input kept being read after the output failed"
    assert sorted(seq for seq, _, _ in journal.entries) == sorted(runs), \
        "every instance that ran is journalled"
    assert journal.durable == [line for _, _, line in journal.entries]
    assert sink.writes == 2, "nothing more was written to a failed output"


def test_a_failed_journal_write_stops_the_run_at_once(run: Any, test_dir: Path,
                                                      tmp_path: Path) -> None:
    journal = _Journal(tmp_path / "journal", fail_at_flush=3)
    sink = _Sink(OSError(errno.EIO, "unused"))
    sink.writes = -(10**9)  # this output never fails
    outcome = _coordinate(run, sink, journal)
    assert outcome.journal_error is not None
    assert outcome.journal_error.errno_name == "ENOSPC"
    assert outcome.journal_error.path == str(tmp_path / "journal")
    assert outcome.output_error is None and outcome.restarts == 0
    runs = _runs(test_dir)
    assert len(runs) == len(set(runs)) and len(runs) < N
    assert set(sink.lines) <= set(journal.durable), "output holds a result not journalled"


class _RaisingListener(QuietListener):
    def __init__(self) -> None:
        self.batches = 0

    def on_batch(self, jobs: list[Job], rows: list[list[Any]], lines: list[bytes]) -> None:
        self.batches += 1
        raise RuntimeError("listener bug")


def test_a_listener_error_stops_the_pool_and_is_not_a_worker_death(run: Any,
                                                                   test_dir: Path) -> None:
    listener = _RaisingListener()

    async def main() -> WorkerPool:
        pool = WorkerPool(WorkerSpec(COUNTED, max_in_flight=50), 2, Feed(_inputs(N)), listener)
        try:
            await pool.start()
            with pytest.raises(RuntimeError, match="listener bug"):
                await pool.wait_idle()
        finally:
            await pool.close()
        return pool

    pool = run(main())
    assert pool.restarts == 0 and listener.batches == 1
    runs = _runs(test_dir)
    assert len(runs) == len(set(runs)) and len(runs) < N


def test_output_closed_by_its_reader_ends_the_run_without_running_anything_twice(
        test_dir: Path, tmp_path: Path) -> None:
    """``shardflow run ... | head -1``."""
    inp = write_jsonl(tmp_path / "in.jsonl", ({"id": i} for i in range(20_000)))
    with subprocess.Popen(
        [sys.executable, "-m", "shardflow", "run", COUNTED, "--input", str(inp), "--output", "-",
         "--workers", "2", "--max-in-flight", "100", "--run-dir", str(tmp_path / "run"),
         "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy(),
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()
        proc.stdout.close()  # the reader goes away, as ``head -1`` does
        stderr = proc.stderr.read().decode()  # until the run ends (or the test times out)
        proc.wait(timeout=60)
    assert b'"status":"completed"' in first
    # The exit status (141, as ``yes | head`` gives) is the CLI's to map from ``output_error``.
    assert "worker restarts" not in stderr, stderr
    runs = _runs(test_dir)
    assert len(runs) == len(set(runs)), "an instance ran twice"
    assert len(runs) < 20_000, "input kept being read after the output closed"


class _Collect(QuietListener):
    def __init__(self) -> None:
        self.rows: dict[int, list[Any]] = {}
        self.lines: dict[int, bytes] = {}
        self.settled = 0

    def on_batch(self, jobs: list[Job], rows: list[list[Any]], lines: list[bytes]) -> None:
        for job, row, line in zip(jobs, rows, lines, strict=True):
            assert job.seq == row[0] and job.seq not in self.rows
            self.rows[job.seq] = row
            self.lines[job.seq] = line

    def on_settled(self) -> None:
        self.settled += 1


def test_pre_answered_jobs_reach_the_listener_without_a_worker(run: Any, test_dir: Path) -> None:
    invalid = int(Status.INVALID_INPUT)

    def jobs() -> Iterator[Job]:
        for i in range(100):
            if i % 10 == 3:
                yield Job(i, i, b"", answer=(invalid, invalid_line(i, "bad", "in.jsonl", i + 1)))
            else:
                yield Job(i, i, b'{"id":%d}' % i)

    listener = _Collect()

    async def main() -> None:
        pool = WorkerPool(WorkerSpec(COUNTED, max_in_flight=20), 2, Feed(jobs()), listener)
        try:
            await pool.start()
            await pool.wait_idle()
        finally:
            await pool.close()

    run(main())
    assert sorted(listener.rows) == list(range(100))
    answered = {seq for seq, row in listener.rows.items() if row[1] == invalid}
    assert answered == {i for i in range(100) if i % 10 == 3}
    assert parse_line(listener.lines[13])["error"]["line"] == 14
    assert sorted(_runs(test_dir)) == sorted(set(range(100)) - answered), \
        "pre-answered jobs never reach a worker"
    assert listener.settled > 0
