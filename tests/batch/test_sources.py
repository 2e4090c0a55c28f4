"""Input sources, in process: every record becomes a job or one invalid record naming the file
and line; no record is silently changed and no bad record stops the rest of the input."""

from __future__ import annotations

import codecs
import io
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from shardflow.batch.jobs import Job
from shardflow.batch.sources import InvalidRecord, Item, open_source
from shardflow.errors import ConfigError


def items(path: Path, fmt: str | None = None) -> list[Item]:
    return list(open_source(str(path), fmt))


def jobs(found: list[Item]) -> dict[Any, Any]:
    """Each job's id and the data its line holds."""
    return {item.id: orjson.loads(item.line) for item in found if isinstance(item, Job)}


def invalid(found: list[Item]) -> dict[int, str]:
    """Line number -> message of each invalid record."""
    return {item.line: item.error for item in found if isinstance(item, InvalidRecord)}


def test_jsonl_ids_line_numbers_and_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"id": "a", "v": 1}\n{"v": 2}\n\n   \n{"id": "a"}\n{oops}\n[1]\n'
                     b'{"id": true}\n{"id": "b", "v": [1.5, null]}')
    found = items(path)
    assert [item.seq for item in found] == list(range(9))
    assert jobs(found) == {"a": {"id": "a", "v": 1}, 2: {"v": 2}, "b": {"id": "b", "v": [1.5, None]}}
    bad = invalid(found)
    assert sorted(bad) == [3, 4, 5, 6, 7, 8]
    assert all(message.startswith(f"{path} line {line}: ") for line, message in bad.items())
    assert "empty line" in bad[3] and "empty line" in bad[4]
    assert "duplicate id 'a': first seen on line 1" in bad[5]
    assert "malformed JSON" in bad[6]
    assert "expected a JSON object, got list" in bad[7]
    assert "'id' must be a string or integer" in bad[8]


def test_jsonl_byte_order_mark_is_not_part_of_the_first_record(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(codecs.BOM_UTF8 + b'{"id": 1}\n{"id": 2}\n')
    assert jobs(items(path)) == {1: {"id": 1}, 2: {"id": 2}}


def test_an_integer_orjson_would_change_is_invalid_naming_line_and_place(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"id": 1, "n": 123456789012345678901234}\n'
                     b'{"id": 2, "order": {"qty": [1, -9223372036854775809]}}\n'
                     b'{"id": 3, "max": 18446744073709551615, "min": -9223372036854775808}\n'
                     b'{"id": 4, "phone": "12345678901234567890123", "f": 1234567890123456789.5}\n'
                     b'{"id": 5, "n": 18446744073709551616}\n')
    found = items(path)
    bad = invalid(found)
    assert sorted(bad) == [1, 2, 5]
    assert bad[1] == (f"{path} line 1: integer 123456789012345678901234 at n exceeds 64-bit "
                      "range, so orjson would change its value; quote it to keep every digit")
    assert "-9223372036854775809 at order.qty[1]" in bad[2]
    assert "18446744073709551616 at n" in bad[5]
    kept = jobs(found)
    assert kept[3] == {"id": 3, "max": 2**64 - 1, "min": -(2**63)}
    assert kept[4]["f"] == 1234567890123456789.5  # a float literal: rounded as floats are
    assert kept[4]["phone"] == "12345678901234567890123"  # digits in a string are text


def test_nan_infinity_and_overflowing_numbers_are_malformed(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"v": NaN}\n{"v": Infinity}\n{"v": -Infinity}\n{"v": 1e400}\n{"v": 1}\n')
    found = items(path)
    assert jobs(found) == {5: {"v": 1}}
    assert all("malformed JSON" in message for message in invalid(found).values())


@pytest.mark.parametrize("block", [1, 7, 64, 1 << 16])
def test_jsonl_reads_the_same_whatever_the_block_size(tmp_path: Path, block: int,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Lines are read a block at a time: a line across blocks, one longer than a block, a
    CRLF line and a last line without newline read as they are."""
    monkeypatch.setattr("shardflow.batch.sources._BLOCK", block)
    path = tmp_path / "in.jsonl"
    long_text = "y" * 100_000
    path.write_bytes(b'{"id": 1}\r\n{"id": 2, "t": "%s"}\n{"id": 3, "n": 99999999999999999999}\n'
                     b'\n{"id": 5, "n": 9999999999999999999}' % long_text.encode())
    found = items(path)
    assert jobs(found) == {1: {"id": 1}, 2: {"id": 2, "t": long_text},
                           5: {"id": 5, "n": 9999999999999999999}}
    assert sorted(invalid(found)) == [3, 4]
    assert "integer 99999999999999999999 at n exceeds 64-bit range" in invalid(found)[3]


def test_json_array_items_and_huge_integers(tmp_path: Path) -> None:
    path = tmp_path / "in.json"
    path.write_bytes(codecs.BOM_UTF8 + b'[{"id": 1}, {"id": 2, "n": 99999999999999999999999},'
                     b' 3, {"id": 1}, {"id": 4, "n": 18446744073709551615}]')
    found = items(path)
    assert jobs(found) == {1: {"id": 1}, 4: {"id": 4, "n": 2**64 - 1}}
    bad = invalid(found)
    assert sorted(bad) == [2, 3, 4]
    assert bad[2].startswith(f"{path} item 2: integer 99999999999999999999999 at n exceeds")
    assert "expected a JSON object, got int" in bad[3]
    assert "duplicate id 1" in bad[4]


def test_json_that_is_not_an_array_stops_the_run_with_one_error(tmp_path: Path) -> None:
    path = tmp_path / "in.json"
    path.write_bytes(b'{"id": 1}')
    with pytest.raises(ConfigError, match="must hold a JSON array"):
        items(path)


def test_csv_with_excel_byte_order_mark_keeps_the_id_header(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(codecs.BOM_UTF8 + "id,name\r\nA-1,Zoë\r\nA-2,Ann\r\n".encode())
    assert jobs(items(path)) == {"A-1": {"id": "A-1", "name": "Zoë"},
                                 "A-2": {"id": "A-2", "name": "Ann"}}


def test_csv_bad_rows_are_invalid_alone_and_the_rest_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(b'id,note\n1,ok\n2,caf\xe9\n3,"two\nlines"\n4,a,b\n\n5,fine\n5,again\n'
                     b'6,\xc3\xa9t\xc3\xa9\n')
    found = items(path)
    assert jobs(found) == {"1": {"id": "1", "note": "ok"}, "3": {"id": "3", "note": "two\nlines"},
                           "5": {"id": "5", "note": "fine"}, "6": {"id": "6", "note": "été"}}
    bad = invalid(found)
    assert bad == {
        3: f"{path} line 3: invalid UTF-8 (byte 0xe9 in field 2)",
        6: f"{path} line 6: expected 2 fields, got 3",
        7: f"{path} line 7: empty line",
        9: f"{path} line 9: duplicate id '5': first seen on line 8",
    }
    assert [item.seq for item in found] == list(range(8))


def test_csv_field_of_200000_characters_is_read(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    big = "x" * 200_000
    path.write_text(f"id,blob\n1,{big}\n2,small\n")
    found = jobs(items(path))
    assert found["1"]["blob"] == big and found["2"]["blob"] == "small"


def test_csv_header_that_is_not_utf8_stops_the_run(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(b"id,n\xffme\n1,2\n")
    with pytest.raises(ConfigError, match="line 1: the header is not UTF-8"):
        open_source(str(path))  # at once, not when the run reads its first record


def test_stdin_is_read_as_the_named_format(monkeypatch: pytest.MonkeyPatch) -> None:
    for fmt, data in (("jsonl", b'{"id": 7}\n\n'), ("csv", b"id\n7\n"), ("json", b'[{"id": 7}]')):
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
        found = list(open_source("-", fmt))
        assert not sys.stdin.buffer.closed, fmt  # stdin is not ours to close
        assert [item.id for item in found if isinstance(item, Job)] in ([7], ["7"])
        assert all(item.error.startswith("<stdin> line 2") for item in found
                   if isinstance(item, InvalidRecord))


def test_missing_file_and_unknown_format_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        open_source(str(tmp_path / "nope.jsonl"))
    with pytest.raises(ConfigError, match="is not one of"):
        open_source(str(tmp_path / "x"), "xml")
