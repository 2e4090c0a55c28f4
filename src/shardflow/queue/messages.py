"""A stream entry made into a job: its field ``data`` holds one JSON object, exactly as one
JSONL input line; the instance id is the object's ``id``, else the message id.

An entry that cannot be an instance becomes a pre-answered job carrying its ``invalid_input``
result (the pool hands it to the listener like any result), so it is acknowledged with a
result, in order, and never retried.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from shardflow.batch.jobs import Job, new_job
from shardflow.engine.results import INVALID_INPUT, Status, result_line

_INVALID = int(Status.INVALID_INPUT)


def job_of(seq: int, message_id: str, fields: dict[bytes, bytes], stream: str) -> Job:
    """The job of one message (``fields`` as redis-py returns them)."""
    raw = fields.get(b"data")
    if raw is None:
        return _invalid(seq, message_id, message_id, stream, "the message has no 'data' field")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return _invalid(seq, message_id, message_id, stream, f"'data' is not JSON: {exc}")
    if not isinstance(data, dict):
        return _invalid(seq, message_id, message_id, stream,
                        f"'data' must be a JSON object, got {type(data).__name__}")
    instance_id: Any = data.get("id", message_id)
    if not isinstance(instance_id, str | int) or isinstance(instance_id, bool):
        return _invalid(seq, message_id, message_id, stream, "'id' must be a string or integer")
    return new_job(seq, instance_id, raw)


def _invalid(seq: int, message_id: str, instance_id: Any, stream: str, why: str) -> Job:
    line = result_line(instance_id, Status.INVALID_INPUT, None,
                       {"step": None, "type": INVALID_INPUT,
                        "message": f"stream {stream!r} message {message_id}: {why}",
                        "source": stream, "message_id": message_id, "traceback": ""},
                       0, time.time(), 0.0)
    return Job(seq, instance_id, b"", answer=(_INVALID, line))
