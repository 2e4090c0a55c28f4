"""Feed: the order jobs leave in, the source read lazily, the window, stop and close."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields

from shardflow.batch.jobs import Feed, Job, new_job


def _source(count: int, read: list[int]) -> Iterator[Job]:
    for seq in range(count):
        read.append(seq)
        yield Job(seq, seq, b"{}")


def test_requeued_first_then_queued_then_source() -> None:
    feed = Feed(_source(3, []))
    feed.put(Job(10, 10, b"{}"))
    feed.requeue(Job(20, 20, b"{}"))
    assert [j.seq for j in feed.take(4)] == [20, 10, 0, 1]
    assert feed.has_ready and not feed.exhausted


def test_source_is_read_only_as_far_as_taken() -> None:
    read: list[int] = []
    feed = Feed(_source(1000, read))
    feed.take(5)
    assert read == [0, 1, 2, 3, 4]


def test_exhausted_when_the_source_runs_dry() -> None:
    feed = Feed(_source(2, []))
    assert len(feed.take(5)) == 2
    assert feed.exhausted and not feed.has_ready and not feed.source_open


def test_room_bounds_what_is_read_from_the_source_but_not_requeued_jobs() -> None:
    room = [2]
    feed = Feed(_source(10, []), room=lambda: room[0])
    assert [j.seq for j in feed.take(5)] == [0, 1]
    room[0] = 0
    assert not feed.has_ready and feed.take(5) == []
    feed.requeue(Job(0, 0, b"{}"))
    assert feed.has_ready and [j.seq for j in feed.take(5)] == [0]
    room[0] = 3
    assert [j.seq for j in feed.take(5)] == [2, 3, 4]


def test_stop_drops_the_source_but_keeps_queued_jobs() -> None:
    read: list[int] = []
    feed = Feed(_source(10, read))
    feed.take(1)
    feed.requeue(Job(0, 0, b"{}"))
    feed.stop()
    assert not feed.exhausted and [j.seq for j in feed.take(5)] == [0]
    assert feed.exhausted and read == [0]


def test_a_put_feed_is_exhausted_only_once_closed() -> None:
    feed = Feed()
    assert not feed.exhausted and not feed.has_ready
    feed.put(Job(0, 0, b"{}"))
    feed.close()
    assert not feed.exhausted
    feed.take(1)
    assert feed.exhausted


def test_a_job_made_by_sources_is_the_job_the_class_makes() -> None:
    """``new_job`` skips the dataclass's ``__init__`` (sources make one job per record): a
    field added to ``Job`` with a default must be set there too, or this fails."""
    made, built = new_job(7, "a", b'{"id":"a"}'), Job(7, "a", b'{"id":"a"}')
    for field in fields(Job):
        assert getattr(made, field.name) == getattr(built, field.name), field.name
