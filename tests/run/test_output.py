"""The output is never destroyed: truncated in place, streams left what they are, and on
resume a regular file is made to agree with the journal with as little change as possible."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from shardflow.run.errors import OutputError
from shardflow.run.output import OutputWriter, check_output, is_stream, reconcile

LINES = [b'{"id":%d}' % i for i in range(5)]


def _expected() -> Iterator[bytes]:
    return iter(LINES)


def _content(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in lines)


def test_reconcile_leaves_an_agreeing_file_alone(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.write_bytes(_content(LINES))
    inode = out.stat().st_ino
    assert reconcile(out, _expected) == "unchanged"
    assert out.stat().st_ino == inode and out.read_bytes() == _content(LINES)


def test_reconcile_appends_to_a_prefix_in_place(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.write_bytes(_content(LINES[:2]) + LINES[2][:3])  # a crash tore the third line
    inode = out.stat().st_ino
    assert reconcile(out, _expected) == "appended"
    assert out.stat().st_ino == inode and out.read_bytes() == _content(LINES)


def test_reconcile_rebuilds_a_disagreeing_file_keeping_its_mode(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.write_bytes(_content([*LINES, b"extra"]))
    out.chmod(0o640)
    assert reconcile(out, _expected) == "rebuilt"
    assert out.read_bytes() == _content(LINES)
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_new_run_truncates_a_regular_file_in_place(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.write_bytes(b"old results\n")
    link = tmp_path / "link"
    link.symlink_to(out)
    inode = out.stat().st_ino
    writer = OutputWriter(str(link), truncate=True)
    writer.write_many(LINES[:1])
    writer.close()
    assert link.is_symlink() and out.stat().st_ino == inode
    assert out.read_bytes() == _content(LINES[:1])


def test_a_fifo_is_written_as_a_stream_and_stays_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert is_stream(str(fifo))
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    writer = OutputWriter(str(fifo), truncate=True)
    writer.write_many(LINES)
    writer.close()
    reader.join(timeout=30)
    assert got == [_content(LINES)] and stat.S_ISFIFO(fifo.stat().st_mode)


def test_a_device_node_stays_a_device(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mknod of a character device needs root")
    null = tmp_path / "null"
    os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    assert is_stream(str(null))
    writer = OutputWriter(str(null), truncate=True)
    writer.write_many(LINES)
    writer.close()
    info = null.stat()
    assert stat.S_ISCHR(info.st_mode) and info.st_rdev == os.makedev(1, 3)


def test_output_that_is_the_input_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "in.jsonl"
    data.write_bytes(b'{"id": 1}\n')
    (tmp_path / "alias").symlink_to(data)
    with pytest.raises(OutputError, match="is the input"):
        check_output(str(tmp_path / "alias"), str(data))
    with pytest.raises(OutputError, match="does not exist"):
        check_output(str(tmp_path / "missing" / "out"), str(data))


def test_a_broken_pipe_is_raised_once_with_the_output_named(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    path = f"/dev/fd/{write_end}"
    writer = OutputWriter(path, truncate=True)
    with pytest.raises(BrokenPipeError) as raised:
        writer.write_many(LINES * 20000)
        writer.flush()
    assert raised.value.filename == path and writer.error is raised.value
    writer.write_many(LINES)  # dead output: dropped, never a second failure
    writer.close()
    os.close(write_end)


def test_a_rebuild_through_a_symlink_keeps_the_link(tmp_path: Path) -> None:
    real = tmp_path / "real.jsonl"
    real.write_bytes(_content([*LINES, b"extra"]))
    link = tmp_path / "out.jsonl"
    link.symlink_to(real)
    assert reconcile(link, _expected) == "rebuilt"
    assert link.is_symlink() and link.resolve() == real
    assert real.read_bytes() == _content(LINES)
