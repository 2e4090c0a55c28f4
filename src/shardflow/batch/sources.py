"""Input sources: JSONL (default), CSV and JSON arrays, files or stdin, and generated inputs.

Each yields :class:`Job`s lazily (bounded memory for any input size) or an
:class:`InvalidRecord` for a line that cannot be an instance, which becomes one
``invalid_input`` result without stopping the batch. Instance ids are the input's ``id``
field, else the line number.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from shardflow.batch.jobs import Job
from shardflow.errors import ConfigError


@dataclass(slots=True)
class InvalidRecord:
    seq: int
    line: int
    error: str
    id: Any = None


Item = Job | InvalidRecord

FORMATS = ("jsonl", "csv", "json")


def detect_format(path: str, explicit: str | None) -> str:
    if explicit:
        if explicit not in FORMATS:
            raise ConfigError("format", f"{explicit!r} is not one of {', '.join(FORMATS)}")
        return explicit
    suffix = Path(path).suffix.lower()
    return {".csv": "csv", ".json": "json"}.get(suffix, "jsonl")


def open_source(path: str, fmt: str | None = None) -> Iterator[Item]:
    """Items of the input at ``path`` (``-`` for stdin) in format ``fmt`` (or by extension)."""
    kind = detect_format(path, fmt)
    if path == "-":
        stream: IO[bytes] = sys.stdin.buffer
        name = "<stdin>"
    else:
        if not Path(path).is_file():
            raise ConfigError("input", f"input file {path!r} does not exist")
        stream = open(path, "rb")  # noqa: SIM115 - closed by the generator
        name = path
    if kind == "csv":
        return _csv_items(stream, name)
    if kind == "json":
        return _json_array_items(_read_json_array(stream, name))
    return _jsonl_items(stream)


class IdTracker:
    """Reports duplicate ids instead of silently merging them (one set entry per id)."""

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: dict[Any, int] = {}

    def check(self, instance_id: Any, line: int) -> str | None:
        first = self._seen.setdefault(instance_id, line)
        if first != line:
            return f"duplicate id {instance_id!r}: first seen on line {first}"
        return None


def _job(seq: int, line_no: int, raw: bytes, tracker: IdTracker) -> Item:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return InvalidRecord(seq, line_no, f"line {line_no}: malformed JSON: {exc}")
    if not isinstance(data, dict):
        return InvalidRecord(
            seq, line_no, f"line {line_no}: expected a JSON object, got {type(data).__name__}"
        )
    instance_id = data.get("id", line_no)
    if not isinstance(instance_id, str | int) or isinstance(instance_id, bool):
        return InvalidRecord(seq, line_no, f"line {line_no}: 'id' must be a string or integer",
                             id=None)
    duplicate = tracker.check(instance_id, line_no)
    if duplicate:
        return InvalidRecord(seq, line_no, f"line {line_no}: {duplicate}", id=instance_id)
    return Job(seq, instance_id, raw)


def _jsonl_items(stream: IO[bytes]) -> Iterator[Item]:
    tracker = IdTracker()
    try:
        for seq, raw in enumerate(stream):
            line_no = seq + 1
            raw = raw.strip()
            if not raw:
                yield InvalidRecord(seq, line_no, f"line {line_no}: empty line")
                continue
            yield _job(seq, line_no, raw, tracker)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


def _csv_items(stream: IO[bytes], name: str) -> Iterator[Item]:
    tracker = IdTracker()
    text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
    try:
        reader = csv.reader(text)
        header = next(reader, None)
        if header is None:
            return
        for seq, row in enumerate(reader):
            line_no = reader.line_num
            if len(row) != len(header):
                yield InvalidRecord(
                    seq, line_no,
                    f"{name} line {line_no}: expected {len(header)} fields, got {len(row)}")
                continue
            record = dict(zip(header, row, strict=True))
            yield _job(seq, line_no, orjson.dumps(record), tracker)
    finally:
        if stream is not sys.stdin.buffer:
            text.close()


def _read_json_array(stream: IO[bytes], name: str) -> list[Any]:
    try:
        data = orjson.loads(stream.read())
    except orjson.JSONDecodeError as exc:
        raise ConfigError("input", f"{name} is not a JSON document: {exc}") from None
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    if not isinstance(data, list):
        raise ConfigError("input", f"{name} must hold a JSON array of objects")
    return data


def _json_array_items(data: list[Any]) -> Iterator[Item]:
    tracker = IdTracker()
    for seq, item in enumerate(data):
        yield _job(seq, seq + 1, orjson.dumps(item), tracker)


def generated(count: int) -> Iterator[Item]:
    """``count`` inputs ``{"id": i}`` without a file (demos and benchmarks)."""
    for i in range(count):
        yield Job(i, i, b'{"id":%d}' % i)
