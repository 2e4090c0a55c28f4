"""The verified journal: checksums find damage, duplicates change nothing, a payload that is
not a result record never reaches the output."""

from __future__ import annotations

from pathlib import Path

import orjson

from shardflow.engine.results import Status, result_line
from shardflow.run.journal_state import RETRY, expected_output, read_state
from shardflow.store.journal import Damage, Entry, FileJournal, encode_entry, scan_journal


def _line(i: int, status: Status = Status.COMPLETED) -> bytes:
    return result_line(i, status, {"id": i}, None, 1, 0.0, 0.0)


def _journal(path: Path, entries: list[tuple[int, Status]]) -> Path:
    journal = FileJournal(path)
    journal.append_many([(seq, int(status), _line(seq, status)) for seq, status in entries])
    journal.close()
    return path


def test_a_flipped_byte_is_damage_named_by_line(tmp_path: Path) -> None:
    path = _journal(tmp_path / "j", [(i, Status.COMPLETED) for i in range(5)])
    lines = path.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b'"id":2', b'"id":7')
    path.write_bytes(b"".join(lines))
    items = list(scan_journal(path))
    assert [type(i).__name__ for i in items] == ["Entry", "Entry", "Damage", "Entry", "Entry"]
    damage = items[2]
    assert isinstance(damage, Damage) and damage.number == 3 and "checksum" in damage.reason


def test_a_changed_seq_or_status_is_damage(tmp_path: Path) -> None:
    path = _journal(tmp_path / "j", [(3, Status.FAILED)])
    entry = path.read_bytes()
    for forged in (b"4" + entry[1:], entry[:2] + b"0" + entry[3:]):
        path.write_bytes(forged)
        (item,) = scan_journal(path)
        assert isinstance(item, Damage) and "checksum mismatch" in item.reason


def test_a_garbage_line_does_not_hide_the_entries_after_it(tmp_path: Path) -> None:
    path = _journal(tmp_path / "j", [(i, Status.COMPLETED) for i in range(4)])
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join([*lines[:2], b"garbage\n", *lines[2:]]))
    state = read_state(path)
    assert [d.number for d in state.damage] == [3]
    assert state.done.count == 4 and state.counts == {"completed": 4}


def test_only_a_last_line_without_newline_is_torn(tmp_path: Path) -> None:
    path = _journal(tmp_path / "j", [(0, Status.COMPLETED), (1, Status.COMPLETED)])
    path.write_bytes(path.read_bytes()[:-5])
    state = read_state(path)
    assert state.torn and not state.damage and state.done.count == 1


def test_a_duplicated_entry_is_idempotent(tmp_path: Path) -> None:
    path = _journal(tmp_path / "j", [(0, Status.COMPLETED), (1, Status.FAILED)])
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines + lines[:1] + lines))
    state = read_state(path)
    assert state.duplicates == 3 and state.counts == {"completed": 1, "failed": 1}
    assert [orjson.loads(x)["id"] for x in expected_output(path, set(), ordered=False)] == [0, 1]


def test_a_payload_that_is_not_a_record_never_reaches_the_output(tmp_path: Path) -> None:
    path = _journal(tmp_path / "j", [(0, Status.COMPLETED)])
    with open(path, "ab") as fh:  # checksums right, contents wrong: a bug or a forgery
        fh.write(encode_entry(1, int(Status.COMPLETED), b"not json"))
        fh.write(encode_entry(2, int(Status.COMPLETED), b'{"id": 2}'))
        fh.write(encode_entry(3, int(Status.FAILED), _line(3, Status.COMPLETED)))
    state = read_state(path)
    assert [d.number for d in state.damage] == [2, 3, 4]
    assert "not JSON" in state.damage[0].reason and "missing field" in state.damage[1].reason
    assert "status" in state.damage[2].reason
    assert list(expected_output(path, set(), ordered=False)) == [_line(0)]


def test_waiting_then_final_counts_once_and_the_output_holds_each_id_once(
        tmp_path: Path) -> None:
    """A continued instance's final record takes the place of its waiting line."""
    path = _journal(tmp_path / "j", [(2, Status.COMPLETED), (0, Status.WAITING),
                                     (1, Status.COMPLETED), (0, Status.COMPLETED)])
    state = read_state(path)
    assert state.counts == {"completed": 3} and state.finished_after_wait == {0}
    ordered = [(orjson.loads(x)["id"], orjson.loads(x)["status"])
               for x in expected_output(path, set(), ordered=True)]
    assert ordered == [(0, "completed"), (1, "completed"), (2, "completed")]
    unordered = [orjson.loads(x)["id"] for x in expected_output(path, set(), ordered=False)]
    assert unordered == [2, 0, 1]


def test_a_retry_entry_withdraws_a_failed_record(tmp_path: Path) -> None:
    path = _journal(tmp_path / "j", [(0, Status.COMPLETED), (1, Status.FAILED)])
    with open(path, "ab") as fh:
        fh.write(encode_entry(1, RETRY, b"2"))
    state = read_state(path)
    assert 1 not in state.done and state.counts == {"completed": 1} and state.withdrawn == {2}
    with open(path, "ab") as fh:
        fh.write(encode_entry(1, int(Status.COMPLETED), _line(1)))
    state = read_state(path)
    assert state.counts == {"completed": 2}
    ids = [orjson.loads(x) for x in expected_output(path, state.withdrawn, ordered=False)]
    assert [(r["id"], r["status"]) for r in ids] == [(0, "completed"), (1, "completed")]


def test_entries_round_trip(tmp_path: Path) -> None:
    path = _journal(tmp_path / "j", [(7, Status.WAITING)])
    (entry,) = scan_journal(path)
    assert entry == Entry(1, 7, int(Status.WAITING), _line(7, Status.WAITING))


def test_the_hot_append_writes_what_encode_entry_writes(tmp_path: Path) -> None:
    """``append_results`` inlines ``encode_entry`` for speed: both must give the same bytes
    (seqs large enough for the seed's mask, every status)."""
    entries = [(seq, int(status), _line(seq, status))
               for seq in (0, 1, 2**28 + 5, 2**40 + 3) for status in Status]
    hot = FileJournal(tmp_path / "hot")
    hot.append_results([(seq, status, 0.0, len(line)) for seq, status, line in entries],
                       [line for _, _, line in entries])
    hot.close()
    assert (tmp_path / "hot").read_bytes() == b"".join(encode_entry(*e) for e in entries)
