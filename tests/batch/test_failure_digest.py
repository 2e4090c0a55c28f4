"""The summary's failure digest stays bounded whatever a run throws at it, and names the
most common message of each step and error type first."""

from __future__ import annotations

from typing import Any

from shardflow.batch.failure_digest import MAX_GROUPS, MAX_MESSAGE, FailureDigest
from shardflow.engine.results import Status, invalid_line, lost_line, result_line


def _failed(instance_id: Any, step: str, kind: str, message: str) -> bytes:
    return result_line(instance_id, Status.FAILED, {}, {"step": step, "type": kind,
                                                        "message": message, "traceback": ""},
                       1, 0.0, 1.0)


def test_most_common_first_three_ids_and_bounded() -> None:
    digest = FailureDigest()
    for i in range(10):
        digest.add_line(_failed(i, "charge", "ValueError", "declined"))
    digest.add_line(_failed("x", "charge", "ValueError", "card expired"))
    for i in range(MAX_GROUPS + 20):  # every message different: kept up to the bound
        digest.add_line(_failed(i, "notify", "KeyError", f"missing key {i}"))
    entries = digest.to_list()
    assert len(entries) == MAX_GROUPS and digest.unshown == 22
    assert entries[0] == {"step": "charge", "type": "ValueError", "message": "declined",
                          "count": 10, "ids": [0, 1, 2]}
    assert entries[1]["message"] == "card expired"
    lines = digest.render()
    assert lines[0] == "    charge ValueError x10: declined (ids 0, 1, 2, ...)"
    assert sum(line.startswith("    notify") for line in lines) == 3  # three messages a type
    assert lines[-1] == "    ... and 22 more with other messages"


def test_long_messages_are_one_cut_line_and_steps_are_named_for_input_and_workers() -> None:
    digest = FailureDigest()
    digest.add_line(_failed(1, "parse", "ValueError", "bad\n  value " + "x" * 500))
    digest.add_line(invalid_line(7, "in.jsonl line 8: not JSON", "in.jsonl", 8))
    digest.add_line(lost_line(9, b'{"id": 9}', "WorkerLost", "the worker died 3 times", 3))
    digest.add_line(b"not json at all")
    entries = {e["step"]: e for e in digest.to_list()}
    message = entries["parse"]["message"]
    assert message.startswith("bad value xxx") and len(message) == MAX_MESSAGE
    steps = {step: e["type"] for step, e in entries.items()}
    assert steps == {"parse": "ValueError", "<input>": "InvalidInput", "<worker>": "WorkerLost"}
