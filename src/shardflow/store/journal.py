"""The run journal: every finished instance, appended and flushed before it counts as done.

One line per result: ``seq <TAB> status <TAB> result-json``. A crash can leave a torn last
line; :func:`read_journal` ignores it and cuts it off, so appending can go on.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Protocol


class JournalStore(Protocol):
    def append(self, seq: int, status: int, line: bytes) -> None: ...

    def append_many(self, entries: list[tuple[int, int, bytes]]) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class FileJournal:
    """Appends to ``journal.jsonl`` in the run directory; ``flush`` hands it to the OS, which
    keeps it through a crash of this process (``fsync=True`` also through a power loss)."""

    def __init__(self, path: Path, *, fsync: bool = False) -> None:
        self.path = path
        self.fsync = fsync
        self._file: IO[bytes] = open(path, "ab")  # noqa: SIM115 - closed by close()

    def append(self, seq: int, status: int, line: bytes) -> None:
        self._file.write(b"%d\t%d\t%s\n" % (seq, status, line))

    def append_many(self, entries: list[tuple[int, int, bytes]]) -> None:
        self._file.write(b"".join([b"%d\t%d\t%s\n" % entry for entry in entries]))

    def flush(self) -> None:
        self._file.flush()
        if self.fsync:
            os.fsync(self._file.fileno())

    def close(self) -> None:
        self.flush()
        self._file.close()


def read_journal(path: Path, *, repair: bool = True) -> Iterator[tuple[int, int, bytes]]:
    """Every complete entry of a journal file, in order; a torn last line is skipped (and,
    with ``repair``, cut off the file so new entries start on a line of their own)."""
    if not path.exists():
        return
    good_end = 0
    with open(path, "rb") as fh:
        for raw in fh:
            if not raw.endswith(b"\n"):
                break
            parts = raw[:-1].split(b"\t", 2)
            if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
                break
            good_end += len(raw)
            yield int(parts[0]), int(parts[1]), parts[2]
    if repair and path.stat().st_size != good_end:
        with open(path, "r+b") as fh:
            fh.truncate(good_end)


class SeqSet:
    """Which input positions are done: one bit per instance (a million cost 125 KB)."""

    __slots__ = ("_bits", "count")

    def __init__(self) -> None:
        self._bits = bytearray()
        self.count = 0

    def add(self, seq: int) -> None:
        byte, bit = divmod(seq, 8)
        if byte >= len(self._bits):
            self._bits.extend(bytes(byte - len(self._bits) + 1 + 1024))
        if not self._bits[byte] >> bit & 1:
            self._bits[byte] |= 1 << bit
            self.count += 1

    def __contains__(self, seq: object) -> bool:
        if not isinstance(seq, int):
            return False
        byte, bit = divmod(seq, 8)
        return byte < len(self._bits) and bool(self._bits[byte] >> bit & 1)
