"""The result record codec: one place builds and reads every output line."""

from __future__ import annotations

import orjson
import pytest

from shardflow.engine.results import (
    LABELS,
    Status,
    invalid_line,
    lost_line,
    parse_line,
    result_line,
)


def test_status_codes_and_labels_round_trip() -> None:
    for status in Status:
        assert LABELS[status] == status.label
        assert Status.of(status.label) is status
    assert Status.of("invalid_input") is Status.INVALID_INPUT


def test_result_line_round_trips_and_keeps_tasks_only_when_present() -> None:
    line = result_line(7, Status.COMPLETED, {"a": 1}, None, 1, 10.0, 2.5)
    record = parse_line(line)
    assert record["status"] == "completed" and record["context"] == {"a": 1}
    assert "tasks" not in record
    waiting = parse_line(result_line("x", Status.WAITING, {}, None, 1, 0.0, 0.0, [{"id": "t"}]))
    assert waiting["tasks"] == [{"id": "t"}]


def test_invalid_line_names_source_and_line() -> None:
    record = parse_line(invalid_line(None, "malformed JSON", "in.jsonl", 3))
    assert record["status"] == "invalid_input"
    assert record["error"]["source"] == "in.jsonl" and record["error"]["line"] == 3


def test_lost_line_keeps_the_input_as_context_when_it_is_an_object() -> None:
    record = parse_line(lost_line(1, b'{"id": 1}', "WorkerLost", "gone", 3))
    assert record["context"] == {"id": 1} and record["error"]["type"] == "WorkerLost"
    assert parse_line(lost_line(1, b"[1]", "WorkerLost", "gone", 3))["context"] is None
    assert parse_line(lost_line(1, b"{", "HardTimeout", "gone", 3, "s"))["error"]["step"] == "s"


@pytest.mark.parametrize("line, problem", [
    (b"{", "not JSON"), (b"[1]", "JSON object"), (b'{"id": 1}', "missing"),
    (orjson.dumps({"id": 1, "status": "done", "context": None, "error": None, "attempts": 1,
                   "started_at": 0, "duration_ms": 0}), "unknown status"),
])
def test_parse_line_names_what_is_wrong(line: bytes, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_line(line)
