"""Result sinks: JSONL output in completion order or, with a bounded buffer, input order."""

from __future__ import annotations

import sys
from collections.abc import Container
from typing import IO


class JsonlSink:
    """Appends result lines to a file (or stdout), buffered; ``flush`` makes them durable."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        if path is None or path == "-":
            self._stream: IO[bytes] = sys.stdout.buffer
            self._owned = False
        else:
            self._stream = open(path, "ab")  # noqa: SIM115 - closed by close()
            self._owned = True

    def write(self, line: bytes) -> None:
        self._stream.write(line + b"\n")

    def write_many(self, lines: list[bytes]) -> None:
        self._stream.write(b"\n".join(lines) + b"\n")

    def flush(self) -> None:
        self._stream.flush()

    def close(self) -> None:
        self._stream.flush()
        if self._owned:
            self._stream.close()


class NullSink:
    """Discards results (benchmarks measure the engine, not the disk)."""

    def write(self, line: bytes) -> None:
        pass

    def write_many(self, lines: list[bytes]) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class Reorder:
    """Releases results in input order (by ``seq``), holding early ones until their turn.

    The coordinator stops reading input while ``span`` (next seq to read minus next seq to
    write) is at its bound, so the buffer never holds more than that many lines.
    """

    def __init__(self, skip: Container[int] | None = None) -> None:
        self._skip = skip or ()
        self.next_seq = 0
        self._held: dict[int, bytes] = {}
        self._advance()

    def _advance(self) -> None:
        """Step over positions finished in an earlier session of a resumed run."""
        while self.next_seq in self._skip:
            self.next_seq += 1

    def push(self, seq: int, line: bytes) -> list[bytes]:
        if seq != self.next_seq:
            self._held[seq] = line
            return []
        ready = [line]
        self.next_seq += 1
        self._advance()
        held = self._held
        while self.next_seq in held:
            ready.append(held.pop(self.next_seq))
            self.next_seq += 1
            self._advance()
        return ready


Sink = JsonlSink | NullSink

