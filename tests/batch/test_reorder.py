"""Reorder: results released in input order, early ones held, finished positions skipped."""

from __future__ import annotations

from shardflow.batch.sinks import Reorder


def test_releases_in_seq_order() -> None:
    reorder = Reorder()
    assert reorder.push(1, b"b") == []
    assert reorder.push(2, b"c") == []
    assert reorder.push(0, b"a") == [b"a", b"b", b"c"]
    assert reorder.next_seq == 3
    assert reorder.push(3, b"d") == [b"d"]


def test_skips_positions_finished_in_an_earlier_session() -> None:
    reorder = Reorder({0, 2, 3})
    assert reorder.next_seq == 1
    assert reorder.push(4, b"e") == []
    assert reorder.push(1, b"b") == [b"b", b"e"]
    assert reorder.next_seq == 5
