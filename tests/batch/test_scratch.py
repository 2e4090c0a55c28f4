"""Scratch files (the workers' watchdog reports) live in the directory the caller gives, the
run directory, never in a ``$TMPDIR/shardflow-*`` folder a killed coordinator would leak."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import orjson
import pytest

from shardflow.batch.jobs import Feed, Job
from shardflow.batch.pool import WorkerPool
from shardflow.batch.spec import WorkerSpec
from shardflow.errors import HARD_TIMEOUT
from support.listeners import QuietListener

BLOCKING = f"{Path(__file__).parent / 'flows_core.py'}:blocking"


class _Collect(QuietListener):
    def __init__(self) -> None:
        self.results: dict[int, dict[str, Any]] = {}

    def on_batch(self, jobs: list[Job], rows: list[list[Any]], lines: list[bytes]) -> None:
        for job, line in zip(jobs, lines, strict=True):
            self.results[job.seq] = orjson.loads(line)


def test_watchdog_reports_go_to_the_scratch_dir(run: Any, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmpdir))
    scratch = tmp_path / "run"
    listener = _Collect()

    async def main() -> WorkerPool:
        jobs = iter([Job(i, i, b'{"id":%d}' % i) for i in range(10)])
        pool = WorkerPool(WorkerSpec(BLOCKING), 1, Feed(jobs), listener, hard_timeout=1.0,
                          scratch_dir=scratch)
        try:
            await pool.start()
            await pool.wait_idle()
        finally:
            await pool.close()
        return pool

    pool = run(main())
    assert pool.hard_timeouts == 1
    blocked = listener.results[3]
    assert blocked["status"] == "failed" and blocked["error"]["type"] == HARD_TIMEOUT
    assert blocked["error"]["step"] == "block", "the report was read from the scratch dir"
    assert sorted(listener.results) == list(range(10))
    assert list(tmpdir.iterdir()) == [], "nothing in $TMPDIR"
    assert list(scratch.iterdir()) == [], "reports are removed once read"
