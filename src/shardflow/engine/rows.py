"""The records that cross the engine/batch boundary, each defined here once.

A batch host (the worker process, a Ray actor) and the coordinator exchange jobs and
results as frames: a JSON header of one row per item plus the items' raw bytes
(``batch/protocol.py``). These are the rows, and the other records that travel between the
shard runner and its hosts:

* :class:`JobRow`: one instance to run (coordinator -> shard), of a :class:`JobKind`;
* :class:`ResultRow`: one finished (or parked) instance (shard -> coordinator);
* :class:`ParkedRow`: the snapshot of an instance now waiting for people;
* :data:`Answer`: what the shard runner makes of one job before it is framed;
* :data:`StepEntry`: one entry of an instance's step log;
* :data:`InputId`: an instance id as the input spelled it.

Rows are NamedTuples: built with their field names, read by them, and framed as JSON arrays
(:func:`encode_rows`; :func:`decode_rows` makes the decoded arrays rows again).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import IntEnum
from functools import partial
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import orjson

from shardflow.engine.results import Status

if TYPE_CHECKING:
    from shardflow.engine.records import ErrorInfo

InputId = str | int
"""An instance id as the input spelled it (a string or an integer): results carry it back
exactly so. The engine's own key for the instance is ``str(id)``."""


class JobKind(IntEnum):
    """What a job's line holds (its code travels in :attr:`JobRow.kind`)."""

    NEW = 0
    """the instance's input object"""
    RESUME = 1
    """``{"state": snapshot, "data": {task id: form data}}``: continue a waiting instance"""


class JobRow(NamedTuple):
    """One instance to run, as a RUN frame's header carries it."""

    seq: int
    instance_id: InputId
    attempt: int
    kind: int
    """a :class:`JobKind` code"""
    length: int
    """of the job's line (the input object, or the snapshot to resume)"""


class ResultRow(NamedTuple):
    """One answered job, as a RESULTS frame's header carries it."""

    seq: int
    status: int
    """a :class:`~shardflow.engine.results.Status` code"""
    duration_ms: float
    length: int
    """of the result line"""


class ParkedRow(NamedTuple):
    """The snapshot of an instance now waiting, as a PARKED frame's header carries it."""

    seq: int
    length: int


Answer = tuple[Status, float, bytes, "bytes | None", "ErrorInfo | None"]
"""The shard runner's answer to one job, before it is framed: (status, duration ms, result
line, snapshot, error). ``snapshot`` is ``{"state", "tasks"}`` of an instance now waiting,
else None. A plain tuple, not a NamedTuple: one is made per job and unpacked once, where the
job is answered (docs/DECISIONS.md)."""


StepEntry = tuple[str, str, int, float, float, "str | None"]
"""One entry of a step log: the fields of :class:`~shardflow.engine.records.StepRecord`
(node, status, attempts, started at, ended at, error type) in a plain tuple.

Why not the record itself: the garbage collector stops tracking a plain tuple of strings and
numbers at its first collection, never a tuple subclass such as a NamedTuple, so every
record of every instance kept or in flight would be walked by every later collection. A
step log holds entries; :func:`~shardflow.engine.records.as_records` makes them records where
history is read (docs/DECISIONS.md)."""

Row = TypeVar("Row", JobRow, ResultRow, ParkedRow)


def encode_rows(rows: Sequence[JobRow] | Sequence[ResultRow] | Sequence[ParkedRow]) -> bytes:
    """``rows`` as a JSON array of arrays."""
    return orjson.dumps(rows, default=tuple)


def decode_rows(row: type[Row], decoded: list[list[Any]]) -> list[Row]:
    """Arrays a frame header decoded to, as rows of type ``row``."""
    return list(map(_MAKERS[row], decoded))


_MAKERS: dict[Any, Callable[[list[Any]], Any]] = {
    kind: partial(tuple.__new__, kind) for kind in (JobRow, ResultRow, ParkedRow)}
"""Row type -> a maker from a decoded array (no per-row Python call)."""
