"""``consume --events-stream``: each instance's lifecycle events, written with its result in
one script, so a killed consumer neither loses them nor writes them for a result that was
never written."""

from __future__ import annotations

from consume.helpers import (
    COMPLETED_EVENTS,
    add,
    consume,
    events,
    kill_midway,
    pending,
    results,
)
from consume.redis_server import RedisServer


def test_each_instance_has_its_events_once_beside_its_result(redis_server: RedisServer) -> None:
    client = redis_server.client()
    ok = add(client, *({"id": f"n{i}"} for i in range(20)))
    failing = add(client, {"id": "f", "fail": True})[0]
    no_object = client.xadd("jobs", {"data": b"[1]"}).decode()

    done = consume(redis_server.url, "--burst", "--events-stream", "jobs:events")

    assert done.returncode == 0, done.stderr
    found = events(client)
    assert {m: found[m] for m in ok} == {m: COMPLETED_EVENTS for m in ok}
    assert found[failing] == ["workflow.started", "step.started", "step.failed",
                              "workflow.failed"]
    assert no_object not in found  # answered before running: a result, no events
    assert len(results(client)) == 22
    first = client.xrange("jobs:events", count=1)[0][1]
    assert b'"instance_id":"n0"' in first[b"record"]


def test_without_the_option_no_events_stream_is_written(redis_server: RedisServer) -> None:
    client = redis_server.client()
    add(client, {"id": "a"})
    assert consume(redis_server.url, "--burst").returncode == 0
    assert client.exists("jobs:events") == 0


def test_events_maxlen_caps_the_stream(redis_server: RedisServer) -> None:
    client = redis_server.client()
    add(client, *({"id": i} for i in range(200)))  # 1200 events
    done = consume(redis_server.url, "--burst", "--events-stream", "jobs:events",
                   "--events-maxlen", "300")
    assert done.returncode == 0, done.stderr
    # MAXLEN ~ trims whole stream nodes (100 entries each): at most one node more is kept.
    assert 300 <= client.xlen("jobs:events") <= 400
    assert len(results(client)) == 200


def test_a_sigkilled_consumers_instances_have_their_events_once(redis_server: RedisServer) -> None:
    client = redis_server.client()
    # the slow ones have sent their first events to the consumer when it is killed
    quick, slow = kill_midway(client, redis_server.url, "--events-stream", "jobs:events")
    assert set(events(client)) == set(quick)  # nothing of an instance without its result

    client.set("skip-sleep", 1)
    survivor = consume(redis_server.url, "--burst", "--claim-idle", "0.2",
                       "--events-stream", "jobs:events", target="flows:work_second_time_quick")

    assert survivor.returncode == 0, survivor.stderr
    found, written = events(client), results(client)
    assert sorted(written) == sorted(quick + slow)
    assert all(len(records) == 1 for records in written.values())
    assert {m: found[m] for m in quick + slow} == {m: COMPLETED_EVENTS for m in quick + slow}
    assert pending(client) == 0


def test_events_maxlen_without_events_stream_is_refused(redis_server: RedisServer) -> None:
    done = consume(redis_server.url, "--burst", "--events-maxlen", "10")
    assert done.returncode == 2
    assert "--events-maxlen: caps the events stream, which is not given" in done.stderr
