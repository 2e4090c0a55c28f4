"""What travels through one Ray call: a batch of jobs in, a :class:`ShardOutput` back.

Both are single ``bytes`` objects in the worker protocol's batch framing (a JSON header plus
the raw lines), so Ray serializes one buffer per call instead of one object per instance
(every Ray call costs 0.3-1.0 ms of CPU; per-object pickling would add to it)."""

from __future__ import annotations

import struct
from collections.abc import Sequence

from shardflow.batch import protocol as p
from shardflow.batch.jobs import Job
from shardflow.engine.rows import JobRow
from shardflow.engine.shard import ShardJob, ShardOutput

_PREFIX = struct.Struct("!IB")


def jobs_payload(jobs: Sequence[Job]) -> bytes:
    header: list[JobRow] = [(job.seq, job.id, job.attempt, job.kind, len(job.line))
                            for job in jobs]
    return p.batch_frame(p.RUN, header, [job.line for job in jobs])


def shard_jobs(payload: bytes) -> list[ShardJob]:
    header, lines = p.split_batch(payload[_PREFIX.size:])
    return [ShardJob(seq, instance_id, attempt, kind, line)
            for (seq, instance_id, attempt, kind, _), line in zip(header, lines, strict=True)]


def output_payload(out: ShardOutput) -> bytes:
    """Events, then snapshots, then results: the driver publishes an instance's events and
    stores its snapshot before it journals the ``waiting`` result."""
    events = p.batch_frame(p.EVENTS, out.event_rows, out.events) if out.events else b""
    parked = p.batch_frame(p.PARKED, out.parked_rows, out.snapshots) if out.snapshots else b""
    return events + parked + p.batch_frame(p.RESULTS, out.rows, out.lines)


def split_output(data: bytes) -> ShardOutput:
    """Undo :func:`output_payload`."""
    out = ShardOutput()
    offset = 0
    while offset < len(data):
        length, kind = _PREFIX.unpack_from(data, offset)
        start = offset + _PREFIX.size
        payload = data[start:start + length]
        if kind == p.PARKED:
            out.parked_rows, out.snapshots = p.split_batch(payload)
        elif kind == p.EVENTS:
            out.event_rows, out.events = p.split_batch(payload)
        else:
            out.rows, out.lines = p.split_batch(payload)
        offset = start + length
    return out
