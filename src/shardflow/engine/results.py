"""The result record: THE output line of one instance, built and read in one place.

Every line ``shardflow run`` writes, every entry of the journal and every
:class:`~shardflow.run.executor.BatchResult` is one of these records::

    {"id", "status", "context", "error", "attempts", "started_at", "duration_ms"[, "tasks"]}

It lives in the engine layer because the shard runner (which encodes finished instances in
the worker) is here; the batch layer (lost and invalid records, parsing) imports it from below.
On the wire and in the journal a status travels as its :class:`Status` code (a small int;
``engine/rows.py`` defines it with the other records of the engine/batch boundary).
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from shardflow.engine.rows import InputId, Status
from shardflow.errors import HARD_TIMEOUT, INVALID_INPUT, WORKER_LOST

_LABELS = {status: status.label for status in Status}
_BY_LABEL = {label: status for status, label in _LABELS.items()}
LABELS: tuple[str, ...] = tuple(_LABELS[s] for s in Status)
"""Labels indexed by code: ``LABELS[code]`` is the cheapest way from a wire int to a label."""

__all__ = ["HARD_TIMEOUT", "INVALID_INPUT", "LABELS", "WORKER_LOST", "Status", "invalid_line",
           "lost_line", "parse_line", "result_line"]


def result_line(instance_id: InputId | None, status: Status, context: Any,
                error: dict[str, Any] | None,
                attempts: int, started_at: float, duration_ms: float,
                tasks: list[dict[str, Any]] | None = None) -> bytes:
    """The output line of an instance that ran (to an end, or to its human tasks)."""
    record: dict[str, Any] = {
        "id": instance_id, "status": _LABELS[status], "context": context, "error": error,
        "attempts": attempts, "started_at": started_at, "duration_ms": duration_ms,
    }
    if tasks:
        record["tasks"] = tasks
    return orjson.dumps(record)


def invalid_line(instance_id: InputId | None, message: str, source: str, line: int) -> bytes:
    """The output line of an input record that cannot be an instance: it names the source
    and the line, and never stops the batch."""
    return result_line(instance_id, Status.INVALID_INPUT, None,
                       {"step": None, "type": INVALID_INPUT, "message": message,
                        "source": source, "line": line, "traceback": ""},
                       0, time.time(), 0.0)


def lost_line(instance_id: InputId | None, raw_input: bytes, error_type: str, message: str,
              attempts: int, step: str | None = None) -> bytes:
    """The output line of an instance no worker could bring to an end (``WorkerLost``,
    ``HardTimeout``): its context is its input, when the input is a JSON object."""
    try:
        context = orjson.loads(raw_input)
    except orjson.JSONDecodeError:
        context = None
    if not isinstance(context, dict):
        context = None
    return result_line(instance_id, Status.FAILED, context,
                       {"step": step, "type": error_type, "message": message, "traceback": ""},
                       attempts, time.time(), 0.0)


_FIELDS = ("id", "status", "context", "error", "attempts", "started_at", "duration_ms")


def parse_line(line: bytes) -> dict[str, Any]:
    """Read a result line back (journal verification, the embedding API, tools); raises
    ``ValueError`` naming what is wrong when ``line`` is not a result record."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    missing = [name for name in _FIELDS if name not in record]
    if missing:
        raise ValueError(f"missing field(s) {', '.join(missing)}")
    if record["status"] not in _BY_LABEL:
        raise ValueError(f"unknown status {record['status']!r}")
    return record
