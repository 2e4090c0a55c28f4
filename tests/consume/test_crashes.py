"""What a consumer keeps when it dies or Redis goes away: nothing lost, nothing twice."""

from __future__ import annotations

import signal

from consume.helpers import (
    add,
    consume,
    http_get,
    http_status,
    kill_midway,
    pending,
    results,
    start_consumer,
    wait_health,
    wait_results,
)
from consume.redis_server import RedisServer, free_port


def test_a_sigkilled_consumers_messages_are_reclaimed_and_run_once(redis_server: RedisServer) -> None:
    client = redis_server.client()
    quick, slow = kill_midway(client, redis_server.url)
    assert pending(client) == 5  # the slow ones, still the victim's

    # Their second delivery must not sleep: the survivor's run finishes them at once.
    client.set("skip-sleep", 1)
    survivor = consume(redis_server.url, "--burst", "--claim-idle", "0.2",
                       target="flows:work_second_time_quick")

    assert survivor.returncode == 0, survivor.stderr
    found = results(client)
    assert sorted(found) == sorted(quick + slow)
    assert all(len(records) == 1 for records in found.values())
    assert {found[m][0]["status"] for m in slow} == {"completed"}
    assert "5 redelivered" in survivor.stderr
    assert pending(client) == 0


def test_redis_stopped_and_restarted_with_aof(redis_server: RedisServer) -> None:
    client = redis_server.client()
    first = add(client, *({"id": f"a{i}"} for i in range(20)))
    port = free_port()
    consumer = start_consumer(redis_server.url, "--metrics-port", str(port),
                              "--metrics-host", "127.0.0.1")
    try:
        wait_results(client, 20)
        assert http_status(port) == 200

        redis_server.stop()
        wait_health(port, 503)
        redis_server.start()  # the same port and directory: the AOF brings the stream back
        client = redis_server.client()
        second = add(client, *({"id": f"b{i}"} for i in range(20)))
        wait_results(client, 40)
        wait_health(port, 200)
        metrics = http_get(port, "/metrics")[1]
        assert "shardflow_broker_reconnects_total 1.0" in metrics
        assert 'shardflow_instances_total{status="completed"} 40.0' in metrics
    finally:
        consumer.send_signal(signal.SIGTERM)
        _, stderr = consumer.communicate(timeout=60)
    assert consumer.returncode == 0, stderr
    found = results(client)
    assert sorted(found) == sorted(first + second)
    assert all(len(records) == 1 for records in found.values())
    assert stderr.count("is unreachable") == 1 and stderr.count("reachable again") == 1
    assert pending(client) == 0
