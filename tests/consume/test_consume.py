"""``shardflow consume`` end to end on a real redis-server: one result per message, failed
and invalid inputs as results, producers, burst mode, human steps refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from consume.helpers import STREAM, add, consume, env, pending, results
from consume.redis_server import RedisServer


def test_every_message_gets_exactly_one_result_and_is_acknowledged(redis_server: RedisServer,
                                                                   tmp_path) -> None:
    client = redis_server.client()
    lines = [orjson.dumps({"id": f"n{i}"}) for i in range(30)] + [b"[1, 2]", b'{"id": "bad"']
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    enq = subprocess.run([sys.executable, "-m", "shardflow", "enqueue", "--redis", redis_server.url,
                          "--stream", STREAM, "--input", str(source)], env=env(redis_server.url),
                         capture_output=True, text=True, timeout=60)
    assert enq.returncode == 1, enq.stderr  # two lines were not JSON objects
    assert f"{source} line 31: expected a JSON object" in enq.stderr
    assert f"{source} line 32: not JSON" in enq.stderr
    assert "30 messages added" in enq.stderr
    failing = add(client, {"id": "f", "fail": True})[0]
    no_object = client.xadd(STREAM, {"data": b"[1]"}).decode()
    no_data = client.xadd(STREAM, {"other": b"x"}).decode()

    done = consume(redis_server.url, "--burst")

    assert done.returncode == 0, done.stderr
    found = results(client)
    assert len(found) == 33 and all(len(records) == 1 for records in found.values())
    by_instance = {records[0]["id"]: records[0] for records in found.values()}
    assert {by_instance[f"n{i}"]["status"] for i in range(30)} == {"completed"}
    assert by_instance["n7"]["context"]["finished"] is True
    assert by_instance["f"]["status"] == "failed"
    assert found[failing][0]["error"]["message"] == "asked to fail: f"
    assert found[no_object][0]["status"] == "invalid_input"
    assert found[no_object][0]["id"] == no_object  # no 'id': the message id is the instance id
    assert "must be a JSON object, got list" in found[no_object][0]["error"]["message"]
    assert "no 'data' field" in found[no_data][0]["error"]["message"]
    assert pending(client) == 0
    assert "33 results" in done.stderr


def test_a_second_burst_consumer_finds_nothing_to_do(redis_server: RedisServer) -> None:
    client = redis_server.client()
    add(client, {"id": 1}, {"id": 2})
    assert consume(redis_server.url, "--burst").returncode == 0
    again = consume(redis_server.url, "--burst")
    assert again.returncode == 0, again.stderr
    assert "0 results" in again.stderr
    assert sum(len(r) for r in results(client).values()) == 2


def test_workflows_with_human_steps_are_refused_in_one_line(redis_server: RedisServer) -> None:
    refused = consume(redis_server.url, "--burst", target="shardflow.examples.approvals:workflow")
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "has human steps" in lines[0] and "shardflow run" in lines[0]


def test_workflows_with_webhooks_are_refused_too(redis_server: RedisServer) -> None:
    target = str(Path(__file__).parent.parent / "batch" / "kind_flows.py") + ":webhooked"
    refused = consume(redis_server.url, "--burst", target=target)
    assert refused.returncode == 2
    assert "webhooks or long timers (wait_payment)" in refused.stderr


def test_a_wrong_redis_url_is_one_clear_line() -> None:
    refused = consume("http://127.0.0.1:1", "--burst")
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("shardflow: error: --redis: 'http://127.0.0.1:1' is not a "
                               "Redis URL (")  # the flag the user gave (issue 23)
