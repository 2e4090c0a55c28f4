"""Input sources: JSONL (default), CSV and JSON arrays, files or stdin, and generated inputs.

Each yields :class:`Job`s lazily (bounded memory for any input size) or an
:class:`InvalidRecord` for a record that cannot be an instance, which becomes one
``invalid_input`` result naming the file and line without stopping the batch. Instance ids
are the input's ``id`` field, else the line number.

Numbers are read exactly or not at all: orjson reads an integer outside 64 bits as a float
(``123456789012345678901234`` as ``1.2345678901234569e+23``), so such a record is invalid
rather than silently changed. Only a line holding a run of 19 or more digits can hold such an
integer; that cheap test (a byte translation and a search, both in C, per block of input) picks
the few lines that are parsed a second time, exactly, to find out.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from shardflow.batch.jobs import Job, new_job
from shardflow.engine.rows import InputId
from shardflow.errors import ConfigError
from shardflow.jsonvalue import problem, render_path


@dataclass(slots=True)
class InvalidRecord:
    seq: int
    line: int
    error: str
    id: InputId | None = None


Item = Job | InvalidRecord

FORMATS = ("jsonl", "csv", "json")

_DIGITS_TO_ZERO = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_NUMBER = b"0" * 19
"""A line translated by ``_DIGITS_TO_ZERO`` holding this may hold an integer orjson cannot
read exactly: -2**63 - 1 has 19 digits; every shorter integer fits in 64 bits."""


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
        return _json_array_items(_read_json_array(stream, name), name)
    return _jsonl_items(stream, name)


class IdTracker:
    """Reports duplicate ids instead of silently merging them (one set entry per id)."""

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: dict[InputId, int] = {}

    def check(self, instance_id: InputId, line: int) -> str | None:
        first = self._seen.setdefault(instance_id, line)
        if first != line:
            return f"duplicate id {instance_id!r}: first seen on line {first}"
        return None


def _item(seq: int, line_no: int, data: Any, raw: bytes, tracker: IdTracker, name: str,
          unit: str = "line") -> Item:
    """The job for the parsed record ``data`` (read from ``raw``), or why it cannot be one;
    ``name``, ``unit`` and ``line_no`` say where it is (spelled out only for a bad record)."""
    if not isinstance(data, dict):
        return InvalidRecord(seq, line_no, f"{name} {unit} {line_no}: expected a JSON object, "
                                           f"got {type(data).__name__}")
    instance_id = data.get("id", line_no)
    if not isinstance(instance_id, str | int) or isinstance(instance_id, bool):
        return InvalidRecord(seq, line_no,
                             f"{name} {unit} {line_no}: 'id' must be a string or integer")
    duplicate = tracker.check(instance_id, line_no)
    if duplicate:
        return InvalidRecord(seq, line_no, f"{name} {unit} {line_no}: {duplicate}",
                             id=instance_id)
    return new_job(seq, instance_id, raw)


def _inexact_number(raw: bytes) -> str | None:
    """Why orjson would change a number of ``raw`` (known to parse), or None. Slow: only for
    lines holding a long run of digits."""
    try:
        exact = json.loads(raw, parse_int=int)  # Python ints: every digit kept
    except RecursionError:  # nested deeper than the stdlib parser goes: not a number problem
        return None
    return _inexact_in(exact)


def _inexact_in(exact: Any) -> str | None:
    """Why orjson would change an integer of ``exact`` (parsed keeping every digit), or None
    (the digits were in a string, or a float's, rounded as floats are)."""
    found = problem(exact)
    if found is None or not found.noun.startswith("number "):
        return None
    where = f" at {render_path(found.path)}" if found.path else ""
    return (f"integer {found.noun.removeprefix('number ')}{where} exceeds 64-bit range, so "
            "orjson would change its value; quote it to keep every digit")


def _jsonl_items(stream: IO[bytes], name: str) -> Iterator[Item]:
    tracker = IdTracker()
    loads, table, long_number = orjson.loads, _DIGITS_TO_ZERO, _LONG_NUMBER
    seq = 0
    try:
        for lines, suspect in _blocks(stream):
            for line in lines:
                line_no = seq + 1
                raw = line.strip()
                if seq == 0 and raw.startswith(codecs.BOM_UTF8):
                    raw = raw[len(codecs.BOM_UTF8):].lstrip()
                if not raw:
                    yield InvalidRecord(seq, line_no, f"{name} line {line_no}: empty line")
                elif suspect and long_number in raw.translate(table):
                    yield _exact_item(seq, line_no, raw, tracker, name)
                else:
                    try:
                        data = loads(raw)
                    except orjson.JSONDecodeError as exc:
                        yield InvalidRecord(seq, line_no,
                                            f"{name} line {line_no}: malformed JSON: {exc}")
                    else:
                        yield _item(seq, line_no, data, raw, tracker, name)
                seq += 1
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


_BLOCK = 1 << 16


def _blocks(stream: IO[bytes]) -> Iterator[tuple[list[bytes], bool]]:
    """The lines of ``stream`` (without their newline), a block at a time, each block with
    whether it may hold a long run of digits: one translation and search per 64 KiB instead
    of one per line, which would cost a third of what parsing the line does."""
    # read1: what is there (a pipe fed line by line streams), at most one block.
    read = getattr(stream, "read1", stream.read)
    pieces: list[bytes] = []  # the start of a line longer than what was read so far
    while True:
        block = read(_BLOCK)
        if not block:
            break
        end = block.rfind(b"\n") + 1
        if end == 0:
            pieces.append(block)
            continue
        body = block[:end]
        if pieces:
            body = b"".join((*pieces, body))
            pieces = []
        if end < len(block):
            pieces.append(block[end:])
        lines = body.split(b"\n")
        lines.pop()  # the empty string after the last newline
        yield lines, _LONG_NUMBER in body.translate(_DIGITS_TO_ZERO)
    if pieces:  # a last line without a newline
        rest = b"".join(pieces)
        yield [rest], _LONG_NUMBER in rest.translate(_DIGITS_TO_ZERO)


def _exact_item(seq: int, line_no: int, raw: bytes, tracker: IdTracker, name: str) -> Item:
    """``_item`` for a line with a run of 19 or more digits: an integer there may be one
    orjson would change (slow, and rare: such lines are parsed twice)."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return InvalidRecord(seq, line_no, f"{name} line {line_no}: malformed JSON: {exc}")
    inexact = _inexact_number(raw)
    if inexact is not None:
        return InvalidRecord(seq, line_no, f"{name} line {line_no}: {inexact}")
    return _item(seq, line_no, data, raw, tracker, name)


def _csv_items(stream: IO[bytes], name: str) -> Iterator[Item]:
    """Rows as records of strings keyed by the header, which is read at once (a header that
    is not UTF-8 stops the run before it starts).

    Why ``surrogateescape``: an invalid UTF-8 byte becomes a lone surrogate in its row only,
    which orjson refuses to encode, so that row alone is invalid and the batch goes on (a
    strict decoder would stop the reader for the rest of the file). ``utf-8-sig`` drops the
    byte-order mark Excel writes ("CSV UTF-8"), which would otherwise be part of the first
    header. The field size limit is the csv module's, process-wide: it is raised so that a
    field of any size that fits in memory is read.
    """
    csv.field_size_limit(sys.maxsize)
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
    reader = csv.reader(text)
    header = next(reader, None)
    bad = _invalid_utf8(header or [])
    if header is None or bad is not None:
        _release(text, stream)
        if bad is not None:
            raise ConfigError("input", f"{name} line 1: the header is not UTF-8 ({bad})")
        return iter(())
    return _csv_rows(text, stream, reader, header, name)


def _release(text: io.TextIOWrapper, stream: IO[bytes]) -> None:
    """Close a file, but leave stdin open (detached, so the wrapper cannot close it)."""
    if stream is sys.stdin.buffer:
        text.detach()
    else:
        text.close()


def _csv_rows(text: io.TextIOWrapper, stream: IO[bytes], reader: Any, header: list[str],
              name: str) -> Iterator[Item]:
    tracker = IdTracker()
    try:
        seq, last_line = 0, reader.line_num
        while True:
            line_no = last_line + 1  # the record's first line (a quoted field may span more)
            try:
                row: list[str] | None = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield InvalidRecord(seq, line_no, f"{name} line {line_no}: not CSV: {exc}")
                row = None
            last_line = reader.line_num
            if row is not None:
                yield _csv_item(seq, line_no, header, row, tracker, name)
            seq += 1
    finally:
        _release(text, stream)


def _csv_item(seq: int, line_no: int, header: list[str], row: list[str], tracker: IdTracker,
              name: str) -> Item:
    if not row:
        return InvalidRecord(seq, line_no, f"{name} line {line_no}: empty line")
    if len(row) != len(header):
        return InvalidRecord(seq, line_no, f"{name} line {line_no}: expected {len(header)} "
                                           f"fields, got {len(row)}")
    record = dict(zip(header, row, strict=True))
    try:
        raw = orjson.dumps(record)
    except orjson.JSONEncodeError:  # a lone surrogate: a byte that was not UTF-8
        return InvalidRecord(seq, line_no,
                             f"{name} line {line_no}: invalid UTF-8 ({_invalid_utf8(row)})")
    return _item(seq, line_no, record, raw, tracker, name)


def _invalid_utf8(fields: list[str]) -> str | None:
    """Which byte of ``fields`` (decoded with ``surrogateescape``) is not UTF-8, if one is."""
    for column, field in enumerate(fields, 1):
        if not field.isascii():
            for char in field:
                if "\udc80" <= char <= "\udcff":
                    return f"byte 0x{ord(char) - 0xDC00:02x} in field {column}"
    return None


def _read_json_array(stream: IO[bytes], name: str) -> list[Any]:
    try:
        text = stream.read()
        if text.startswith(codecs.BOM_UTF8):
            text = text[len(codecs.BOM_UTF8):]
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ConfigError("input", f"{name} is not a JSON document: {exc}") from None
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    if not isinstance(data, list):
        raise ConfigError("input", f"{name} must hold a JSON array of objects")
    if _LONG_NUMBER in text.translate(_DIGITS_TO_ZERO):
        exact: list[Any] = json.loads(text, parse_int=int)  # rare: read again, every digit kept
        return exact
    return data


def _json_array_items(data: list[Any], name: str) -> Iterator[Item]:
    """Items of a JSON array. A list read with exact integers (see ``_read_json_array``)
    may hold ones orjson cannot write: those items are invalid."""
    tracker = IdTracker()
    for seq, item in enumerate(data):
        try:
            raw = orjson.dumps(item)
        except orjson.JSONEncodeError as exc:
            reason = _inexact_in(item) or f"cannot be written as JSON: {exc}"
            yield InvalidRecord(seq, seq + 1, f"{name} item {seq + 1}: {reason}")
            continue
        yield _item(seq, seq + 1, item, raw, tracker, name, "item")


def generated(count: int) -> Iterator[Item]:
    """``count`` inputs ``{"id": i}`` without a file (demos and benchmarks)."""
    for i in range(count):
        yield new_job(i, i, b'{"id":%d}' % i)


def count_records(path: str, fmt: str | None) -> int | None:
    """How many records the input file holds, or ``None`` when that is unknown without
    parsing it (a JSON array, stdin). JSONL counts lines, CSV lines after the header."""
    kind = detect_format(path, fmt)
    if path == "-" or kind == "json" or not Path(path).is_file():
        return None
    lines, last = 0, b"\n"
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    lines += last != b"\n"
    return max(lines - 1, 0) if kind == "csv" else lines
