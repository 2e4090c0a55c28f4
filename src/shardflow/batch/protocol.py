"""The coordinator <-> worker wire protocol: length-prefixed frames of orjson and raw bytes.

Nothing is pickled. A frame is ``u32 length | u8 kind | payload``. Batches carry many
instances per frame (one message per instance tops out near 85k/s; batches of 64+ reach
330k+/s): a JSON header lists ``[seq, ..., length]`` per item and the raw bytes follow,
concatenated, so neither side re-encodes what it only forwards.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Sequence
from typing import Any

import orjson

from shardflow.engine.rows import JobKind, JobRow, ParkedRow, ResultRow, decode_rows, encode_rows

# Coordinator -> worker
RUN = 1  # header: JobRow per job; body: inputs or snapshots
STOP = 2  # finish what is in flight, report stats, exit
GRANT = 3  # limit slots granted: {"grants": [[request id, ...]]}
# Worker -> coordinator
READY = 10  # {"pid": ...}
FATAL = 11  # {"error": ..., "traceback": ...}: the worker cannot run this workflow
RESULTS = 12  # header: ResultRow per result; body: output lines
STATS = 13  # {"steps": {node: [count, total ms, max ms]}}
HEARTBEAT = 14  # {} : the worker's loop is alive
ACQUIRE = 15  # ask for limit slots
RELEASE = 16  # give limit slots back
PARKED = 17  # header: ParkedRow per snapshot; body: snapshots of instances now waiting
EVENTS = 18  # header: (seq, length) per job; body: its events as JSONL (before its result)

# Job kinds in a RUN header (defined in engine/rows.py)
NEW = JobKind.NEW
RESUME = JobKind.RESUME

_PREFIX = struct.Struct("!IB")


def frame(kind: int, payload: bytes) -> bytes:
    return _PREFIX.pack(len(payload), kind) + payload


def json_frame(kind: int, value: Any) -> bytes:
    return frame(kind, orjson.dumps(value))


def batch_frame(kind: int, header: Sequence[JobRow] | Sequence[ResultRow] | Sequence[ParkedRow],
                blobs: Sequence[bytes]) -> bytes:
    """A header of rows (each ending with its blob's length) and the blobs."""
    head = encode_rows(header)
    body = b"".join(blobs)
    return _PREFIX.pack(4 + len(head) + len(body), kind) + len(head).to_bytes(4, "big") + head + body


def split_batch(payload: bytes) -> tuple[list[Any], list[bytes]]:
    """Undo :func:`batch_frame`: the header rows (``engine/rows.py``) and each item's bytes."""
    head_len = int.from_bytes(payload[:4], "big")
    header = decode_rows(payload[4 : 4 + head_len])
    blobs: list[bytes] = []
    offset = 4 + head_len
    for item in header:
        end = offset + item[-1]
        blobs.append(payload[offset:end])
        offset = end
    return header, blobs


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """The next frame; raises :class:`asyncio.IncompleteReadError` at end of stream."""
    prefix = await reader.readexactly(_PREFIX.size)
    length, kind = _PREFIX.unpack(prefix)
    return kind, await reader.readexactly(length)
