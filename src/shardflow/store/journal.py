"""The run journal: every finished instance, appended and flushed before it counts as done.

One line per result: ``seq <TAB> status <TAB> crc <TAB> result-json``. ``crc`` (decimal) is
the CRC32 of the result started from ``seq << 4 | status`` instead of 0, so it covers the
seq and the status too (a different start value always gives a different CRC): a flipped
byte, a line spliced in by hand or a garbled seq is found on read-back instead of being copied
into the output or hiding the instance from the resume. (Decimal, and one CRC seeded with
the seq rather than a second CRC over it, because both are cheaper per entry:
docs/PERFORMANCE.md, "Journal entry encoding".)

A crash can only tear the *last* line (appends are sequential): :func:`scan_journal` reports
it as ``torn`` and :func:`cut_torn_tail` cuts it off, so appending can go on. Damage anywhere
else is reported with its line number; what to do about it (stop, or keep every intact
entry) is the run's decision, not the store's.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol
from zlib import crc32


class JournalStore(Protocol):
    def append(self, seq: int, status: int, line: bytes) -> None: ...

    def append_many(self, entries: list[tuple[int, int, bytes]]) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


def _start(seq: int, status: int) -> int:
    return (seq << 4 | status) & 0xFFFFFFFF


def encode_entry(seq: int, status: int, line: bytes) -> bytes:
    """One journal line (with its newline); ``status`` is below 16."""
    return b"%d\t%d\t%d\t%s\n" % (seq, status, crc32(line, _start(seq, status)), line)


class FileJournal:
    """Appends to ``journal.jsonl`` in the run directory; ``flush`` hands it to the OS, which
    keeps it through a crash of this process (``fsync=True`` also through a power loss).

    Write errors (a full disk, ``ulimit -f``) are raised as :class:`OSError` whose
    ``filename`` is the journal, so whoever stops the run can name the file."""

    def __init__(self, path: Path, *, fsync: bool = False) -> None:
        self.path = path
        self.fsync = fsync
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._file: IO[bytes] = open(fd, "ab")  # noqa: SIM115 - closed by close()
        self.error: OSError | None = None
        """The first failed write (the run reports it even if the caller swallowed it)."""

    def append(self, seq: int, status: int, line: bytes) -> None:
        self._write(encode_entry(seq, status, line))

    def append_many(self, entries: list[tuple[int, int, bytes]]) -> None:
        """Entries ``(seq, status, line)`` in one write (off the hot path: ``resume``'s retry
        marks, tests)."""
        self._write(b"".join([encode_entry(seq, status, line) for seq, status, line in entries]))

    def append_results(self, rows: Sequence[tuple[int, int, float, int]],
                       lines: list[bytes]) -> None:
        """The hot path of a journalled run: a frame of results in one write, as it arrived
        (``rows`` are its header rows, ``engine/rows.py``'s ``ResultRow``, ``lines`` its
        result lines), ``encode_entry`` inlined: a call per entry is a measurable share of
        the journal's cost (docs/PERFORMANCE.md, "Journal entry encoding")."""
        self._write(b"".join([
            b"%d\t%d\t%d\t%s\n" % (seq, status, crc32(line, (seq << 4 | status) & 0xFFFFFFFF),
                                   line)
            for (seq, status, _, _), line in zip(rows, lines, strict=True)]))

    def _write(self, data: bytes) -> None:
        try:
            self._file.write(data)
        except OSError as exc:
            raise self._error(exc) from None

    def _error(self, exc: OSError) -> OSError:
        error = OSError(exc.errno, exc.strerror, str(self.path))
        self.error = self.error or error
        return error

    def flush(self) -> None:
        try:
            self._file.flush()
            if self.fsync:
                os.fsync(self._file.fileno())
        except OSError as exc:
            raise self._error(exc) from None

    def close(self) -> None:
        """Flush and close; after a failed write the unwritten rest is dropped (the error was
        raised already, and the instances it held are not journalled, so they re-run)."""
        if self.error is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            return
        self.flush()
        self._file.close()


@dataclass(frozen=True, slots=True)
class Entry:
    """One intact journal entry; ``number`` is its line number in the file (from 1)."""

    number: int
    seq: int
    status: int
    line: bytes


@dataclass(frozen=True, slots=True)
class Damage:
    """A journal line that is not an intact entry: where, and what is wrong with it."""

    number: int
    reason: str
    torn: bool = False
    """The last line, without its newline: what a crash during an append leaves."""


def scan_journal(path: Path) -> Iterator[Entry | Damage]:
    """Every line of a journal file, in order, as an :class:`Entry` or a :class:`Damage`."""
    if not path.exists():
        return
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, 1):
            if not raw.endswith(b"\n"):
                yield Damage(number, "torn last line (a crash during a write)", torn=True)
                return
            yield _decode(number, raw)


def _decode(number: int, raw: bytes) -> Entry | Damage:
    parts = raw[:-1].split(b"\t", 3)
    if len(parts) != 4:
        return Damage(number, "not a journal entry (expected seq, status, checksum, record)")
    seq, status, crc, line = parts
    if not (seq.isdigit() and status.isdigit() and crc.isdigit()):
        return Damage(number, "seq, status or checksum is not a number")
    if crc32(line, _start(int(seq), int(status))) != int(crc):
        return Damage(number, "checksum mismatch (the entry was changed or corrupted)")
    return Entry(number, int(seq), int(status), line)


def cut_torn_tail(path: Path) -> None:
    """Cut a torn last line off the journal, so the next append starts a line of its own."""
    if not path.exists():
        return
    size = path.stat().st_size
    if size == 0:
        return
    with open(path, "r+b") as fh:
        start = max(0, size - (1 << 20))
        while True:
            fh.seek(start)
            tail = fh.read(size - start)
            newline = tail.rfind(b"\n")
            if newline >= 0 or start == 0:
                break
            start = max(0, start - (1 << 20))
        keep = start + newline + 1 if newline >= 0 else 0
        if keep != size:
            fh.truncate(keep)


def rewrite_journal(path: Path, entries: Iterable[Entry]) -> None:
    """Replace the journal by ``entries`` (``--repair``: the damaged lines are left out;
    ``entries`` may be read from the journal itself, lazily). A sibling file and
    ``os.replace``, so a crash leaves the old journal or the new one."""
    tmp = path.with_name(path.name + ".repair")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "wb") as fh:
        for entry in entries:
            fh.write(encode_entry(entry.seq, entry.status, entry.line))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class SeqSet:
    """Which input positions are done: one bit per instance (a million cost 125 KB)."""

    __slots__ = ("_bits", "count")

    def __init__(self) -> None:
        self._bits = bytearray()
        self.count = 0

    def add(self, seq: int) -> bool:
        """Mark ``seq``; ``False`` when it was marked already."""
        byte, bit = divmod(seq, 8)
        if byte >= len(self._bits):
            self._bits.extend(bytes(byte - len(self._bits) + 1 + 1024))
        if self._bits[byte] >> bit & 1:
            return False
        self._bits[byte] |= 1 << bit
        self.count += 1
        return True

    def discard(self, seq: int) -> None:
        byte, bit = divmod(seq, 8)
        if byte < len(self._bits) and self._bits[byte] >> bit & 1:
            self._bits[byte] &= ~(1 << bit) & 0xFF
            self.count -= 1

    def __len__(self) -> int:
        return self.count

    def __contains__(self, seq: object) -> bool:
        if not isinstance(seq, int):
            return False
        byte, bit = divmod(seq, 8)
        return byte < len(self._bits) and bool(self._bits[byte] >> bit & 1)
