"""The wire protocol: frames, batch frames and reading them back from a stream."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from shardflow.batch import protocol as p
from shardflow.engine.results import Status
from shardflow.engine.rows import JobRow, ResultRow


def test_batch_frame_round_trip_keeps_bytes_exact() -> None:
    blobs = [b'{"id":1}', b"", b"\x00\xff raw \n bytes"]
    header: list[JobRow] = [(0, "a", 1, p.NEW, len(blobs[0])), (1, 2, 1, p.RESUME, 0),
                            (2, "", 3, p.NEW, len(blobs[2]))]
    framed = p.batch_frame(p.RUN, header, blobs)
    length, kind = int.from_bytes(framed[:4], "big"), framed[4]
    assert kind == p.RUN and length == len(framed) - 5
    rows, lines = p.split_batch(framed[5:])
    assert lines == blobs
    assert [tuple(row) for row in rows] == header


def test_read_frame_reads_consecutive_frames_then_reports_the_end(run: Any) -> None:
    async def main() -> list[tuple[int, bytes]]:
        reader = asyncio.StreamReader()
        reader.feed_data(p.json_frame(p.READY, {"pid": 7}) + p.frame(p.STOP, b""))
        rows: list[ResultRow] = [(3, int(Status.WAITING), 1.5, 2)]
        reader.feed_data(p.batch_frame(p.RESULTS, rows, [b"{}"]))
        reader.feed_eof()
        frames = [await p.read_frame(reader) for _ in range(3)]
        with pytest.raises(asyncio.IncompleteReadError):
            await p.read_frame(reader)
        return frames

    ready, stop, results = run(main())
    assert ready == (p.READY, orjson.dumps({"pid": 7}))
    assert stop == (p.STOP, b"")
    assert results[0] == p.RESULTS
    assert p.split_batch(results[1]) == ([[3, 2, 1.5, 2]], [b"{}"])


def test_a_frame_cut_short_is_an_incomplete_read(run: Any) -> None:
    async def main() -> None:
        reader = asyncio.StreamReader()
        reader.feed_data(p.json_frame(p.HEARTBEAT, {})[:-1])
        reader.feed_eof()
        with pytest.raises(asyncio.IncompleteReadError):
            await p.read_frame(reader)

    run(main())

