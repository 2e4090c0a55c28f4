"""The records that cross the engine/batch boundary, each defined here once.

A batch host (the worker process, a Ray actor) and the coordinator exchange jobs and
results as frames: a JSON header of one row per item plus the items' raw bytes
(``batch/protocol.py``). These are the rows, and the other records that travel between the
shard runner and its hosts:

* :data:`JobRow`: one instance to run (coordinator -> shard), of a :class:`JobKind`;
* :data:`ResultRow`: one finished (or parked) instance (shard -> coordinator);
* :data:`ParkedRow`: the snapshot of an instance now waiting for people;
* :data:`Answer`: what the shard runner makes of one job before it is framed;
* :data:`StepEntry`: one entry of an instance's step log;
* :class:`Status`: the status of a result record, as its code travels;
* :data:`InputId`: an instance id as the input spelled it.

Rows are typed tuples, not NamedTuples: they are made and framed per instance on the hot path
of every batch, where building, encoding and decoding NamedTuples measured dearer than plain
arrays by far (docs/PERFORMANCE.md, docs/DECISIONS.md). Build them as tuple literals in field
order; read them by unpacking into named variables.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from shardflow.engine.records import ErrorInfo

InputId = str | int
"""An instance id as the input spelled it (a string or an integer): results carry it back
exactly so. The engine's own key for the instance is ``str(id)``."""


class Status(IntEnum):
    """The status of a result record; the int is its wire and journal code, the label is
    what the output line spells."""

    COMPLETED = 0
    FAILED = 1
    WAITING = 2
    INVALID_INPUT = 3
    CANCELLED = 4

    @property
    def label(self) -> str:
        return _LABELS[self]

    @classmethod
    def of(cls, label: str) -> Status:
        """The status spelled ``label`` in an output line (``"invalid_input"`` ...)."""
        return _BY_LABEL[label]


_LABELS = {status: status.name.lower() for status in Status}
_BY_LABEL = {label: status for status, label in _LABELS.items()}


class JobKind(IntEnum):
    """What a job's line holds (its code travels in :attr:`JobRow.kind`)."""

    NEW = 0
    """the instance's input object"""
    RESUME = 1
    """``{"state": snapshot, "data": {task id: form data}}``: continue a waiting instance"""


JobRow = tuple[int, InputId | None, int, int, int]
"""One instance to run, as a RUN frame's header carries it:
``(seq, instance id, attempt, kind, length)``, where ``kind`` is a :class:`JobKind` code and
``length`` that of the job's line (the input object, or the snapshot to resume). The id is
typed as a batch ``Job``'s: None only for records answered before they run, never sent."""

ResultRow = tuple[int, int, float, int]
"""One answered job, as a RESULTS frame's header carries it:
``(seq, status, duration ms, length)``, where ``status`` is a
:class:`~shardflow.engine.results.Status` code and ``length`` that of the result line."""

ParkedRow = tuple[int, int]
"""The snapshot of an instance now waiting, as a PARKED frame's header carries it:
``(seq, length)``."""


Answer = tuple[Status, float, bytes, "bytes | None", "ErrorInfo | None"]
"""The shard runner's answer to one job, before it is framed: (status, duration ms, result
line, snapshot, error). ``snapshot`` is ``{"state", "tasks"}`` of an instance now waiting,
else None. A plain tuple, not a NamedTuple: one is made per job and unpacked once, where the
job is answered (docs/DECISIONS.md)."""


StepEntry = tuple[str, str, int, float, float, "str | None"]
"""One entry of a step log: the fields of :class:`~shardflow.engine.records.StepRecord`
(node, status, attempts, started at, ended at, error) in a plain tuple.

Why not the record itself: the garbage collector stops tracking a plain tuple of strings and
numbers at its first collection, never a tuple subclass such as a NamedTuple, so every
record of every instance kept or in flight would be walked by every later collection. A
step log holds entries; :func:`~shardflow.engine.records.as_records` makes them records where
history is read (docs/DECISIONS.md)."""

def encode_rows(rows: Sequence[JobRow] | Sequence[ResultRow] | Sequence[ParkedRow]) -> bytes:
    """``rows`` as a JSON array of arrays (a frame's header)."""
    return orjson.dumps(rows)


def decode_rows(head: bytes) -> list[Any]:
    """The rows of a frame header :func:`encode_rows` made. They come back as JSON arrays
    (lists) holding the same fields; a caller names them as its rows (``list[ResultRow]``):
    every reader indexes or unpacks them, the same on a list as on a tuple."""
    rows: list[Any] = orjson.loads(head)
    return rows
