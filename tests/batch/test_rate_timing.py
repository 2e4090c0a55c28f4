"""Time-driven parts of the coordinator on a fake clock: rate grants (GCRA) released exactly
when due, and the heartbeat watch that kills a silent worker."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from shardflow._clock import FakeClock
from shardflow.batch.arbiter import Arbiter
from shardflow.batch.heartbeat import HeartbeatWatch


class _Worker:
    dead = False


def _acquire(arbiter: Arbiter, worker: _Worker, rids: range, rate: str | None = "sms",
             names: tuple[str, ...] = ()) -> None:
    arbiter.on_acquire(worker, orjson.dumps([[rid, list(names), rate] for rid in rids]))


def test_rate_grants_are_sent_exactly_when_due(run: Any) -> None:
    async def main() -> list[tuple[float, list[int]]]:
        clock = FakeClock()
        sent: list[tuple[float, list[int]]] = []
        arbiter = Arbiter({}, {"sms": "10/s"}, lambda w, rids: sent.append((clock.now(), rids)),
                          clock)
        worker = _Worker()
        _acquire(arbiter, worker, range(3))
        await clock.wait_for_timers(2)
        await _settle()
        assert sent == [(0.0, [0])], "the first start is due at once"
        clock.advance(0.0999)
        await _settle()
        assert len(sent) == 1, "not a moment early"
        clock.advance(0.0001)
        await _settle()
        clock.advance(0.1)
        await _settle()
        return sent

    sent = run(main())
    assert [rids for _, rids in sent] == [[0], [1], [2]]
    assert [round(at, 6) for at, _ in sent] == [0.0, 0.1, 0.2]


def test_burst_grants_at_once_then_paces(run: Any) -> None:
    async def main() -> list[list[int]]:
        clock = FakeClock()
        sent: list[list[int]] = []
        arbiter = Arbiter({}, {"sms": "2/s burst 3"}, lambda w, rids: sent.append(rids), clock)
        _acquire(arbiter, _Worker(), range(4))
        await _settle()
        assert sent == [[0, 1, 2]]
        clock.advance(0.49)
        await _settle()
        assert sent == [[0, 1, 2]]
        clock.advance(0.01)
        await _settle()
        return sent

    assert run(main()) == [[0, 1, 2], [3]]


def test_a_worker_gone_withdraws_its_pending_grants(run: Any) -> None:
    async def main() -> list[list[int]]:
        clock = FakeClock()
        sent: list[list[int]] = []
        arbiter = Arbiter({"api": 1}, {"sms": "1/s"}, lambda w, rids: sent.append(rids), clock)
        gone, other = _Worker(), _Worker()
        _acquire(arbiter, gone, range(2), names=("api",))
        _acquire(arbiter, other, range(1), names=("api",))
        await _settle()
        arbiter.worker_gone(gone)  # releases its slot: ``other`` gets it, at its due time
        clock.advance(10)
        await _settle()
        return sent

    assert run(main()) == [[0], [0]]


async def _settle() -> None:
    """Let the arbiter's once-per-iteration flush run."""
    for _ in range(3):
        await asyncio.sleep(0)


def test_heartbeat_watch_kills_a_silent_worker_once(run: Any) -> None:
    async def main() -> list[str]:
        clock = FakeClock()
        killed: list[str] = []
        watch: HeartbeatWatch[str] = HeartbeatWatch(clock, 2.5, killed.append, interval=0.25)
        watch.beat("quiet")
        watch.beat("alive")
        task = asyncio.ensure_future(watch.run())
        for _ in range(10):  # 2.5 s: nobody is late yet
            await clock.wait_for_timers(1)
            watch.beat("alive")
            clock.advance(0.25)
            await asyncio.sleep(0)
        assert killed == []
        await clock.wait_for_timers(1)
        watch.beat("alive")
        clock.advance(0.25)
        await asyncio.sleep(0)
        assert killed == ["quiet"]
        watch.forget("quiet")
        for _ in range(20):
            await clock.wait_for_timers(1)
            watch.beat("alive")
            clock.advance(0.25)
            await asyncio.sleep(0)
        task.cancel()
        return killed

    assert run(main()) == ["quiet"]
