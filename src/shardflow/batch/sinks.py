"""Result sinks: the Protocol the coordinator writes to, a null sink, and input-order release."""

from __future__ import annotations

from collections.abc import Container
from typing import Protocol


class Sink(Protocol):
    """Where the coordinator writes result lines (:class:`shardflow.run.output.OutputWriter`
    writes the output file; :class:`NullSink` discards). A failed write raises ``OSError``."""

    def write(self, line: bytes) -> None: ...

    def write_many(self, lines: list[bytes]) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


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


