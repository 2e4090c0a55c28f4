"""The run core on an in-process pool (no worker processes): the order in which a result
becomes visible is the same for every sink -- journalled, flushed, then released."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from shardflow.batch.config import RunConfig
from shardflow.batch.inprocess import InProcessPool
from shardflow.batch.jobs import Feed, Job, new_job
from shardflow.batch.run_core import RunCore
from shardflow.batch.spec import WorkerSpec
from shardflow.engine.results import Status, invalid_line

TARGET = "shardflow.examples.notify:workflow"


class Ledger:
    """Journals into ``events``; its flush fails when told to."""

    def __init__(self, events: list[Any], fail_flush: bool = False) -> None:
        self.events = events
        self.fail_flush = fail_flush
        self.journalled: set[int] = set()
        self.durable: set[int] = set()

    def record_batch(self, jobs: list[Job], rows: list[list[Any]], lines: list[bytes]) -> None:
        self.journalled.update(job.seq for job in jobs)
        self.events.append(("journal", len(jobs)))

    def parked(self, parked: list[tuple[Job, bytes]]) -> None:
        self.events.append(("parked", len(parked)))

    def flush(self) -> None:
        if self.fail_flush:
            raise OSError(28, "No space left on device")
        self.durable |= self.journalled
        self.events.append(("flush",))


class Sink:
    def __init__(self, events: list[Any], ledger: Ledger) -> None:
        self.events = events
        self.ledger = ledger
        self.held: list[bytes] = []
        self.released: list[dict[str, Any]] = []
        self.error: BaseException | None = None

    def accept(self, jobs: list[Job], rows: list[list[Any]], lines: list[bytes]) -> None:
        self.held += lines
        self.events.append(("accept", len(jobs)))

    def release(self) -> None:
        records = [orjson.loads(line) for line in self.held]
        # Whatever leaves the run is durable in its journal already.
        assert all(r["id"] in self.ledger.durable or r["status"] == "invalid_input" for r in records)
        self.released += records
        self.held = []
        self.events.append(("release",))

    def stopped(self, error: BaseException) -> None:
        self.error = error


def _core(sink: Sink, ledger: Ledger, feed: Feed) -> RunCore:
    spec = WorkerSpec(target=TARGET, max_in_flight=8)
    return RunCore(RunConfig(workers=1, max_in_flight=8), spec, feed, sink, hard_timeout=10.0,
                   ledger=ledger, pool_factory=InProcessPool)


def _jobs(count: int) -> list[Job]:
    jobs = [new_job(i, i, orjson.dumps({"id": i})) for i in range(count)]
    bad = invalid_line("x", "in.jsonl line 9: expected a JSON object", "in.jsonl", 9)
    jobs.append(Job(count, "x", b"", answer=(int(Status.INVALID_INPUT), bad)))
    return jobs


def test_results_are_released_only_after_the_journal_is_flushed(run: Any) -> None:
    events: list[Any] = []
    ledger = Ledger(events)
    sink = Sink(events, ledger)
    core = _core(sink, ledger, Feed(iter(_jobs(20))))

    async def body() -> None:
        await core.start()
        await core.pool.wait_idle()
        await core.close()

    run(body())

    assert sorted(r["id"] for r in sink.released if r["status"] == "completed") == list(range(20))
    assert [r["status"] for r in sink.released].count("invalid_input") == 1
    assert sink.held == []
    kinds = [e[0] for e in events]
    for i, kind in enumerate(kinds):  # every accept is journalled first, flushed, then released
        if kind == "accept":
            assert kinds[i - 1] == "journal"
            assert kinds[i + 1:i + 3] == ["flush", "release"]
    assert sum(e[1] for e in events if e[0] == "journal") == 21
    assert core.pool.step_stats[(0, 0)]["complete"][0] == 20  # executions of the join step


def test_a_journal_that_cannot_be_flushed_stops_the_run_and_releases_nothing(run: Any) -> None:
    events: list[Any] = []
    ledger = Ledger(events, fail_flush=True)
    sink = Sink(events, ledger)
    core = _core(sink, ledger, Feed(iter(_jobs(5))))

    async def body() -> None:
        await core.start()
        with pytest.raises(OSError, match="No space left"):
            await core.pool.wait_idle()
        await core.close()

    run(body())
    assert isinstance(sink.error, OSError)
    assert sink.released == [] and ("release",) not in events
