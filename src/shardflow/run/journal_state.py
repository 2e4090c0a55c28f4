"""Reading a journal back: which instances are done, what the output must hold.

An entry is *accepted* when it is intact (its checksum holds and its payload is a result
record whose status is the entry's) and it is news: per input position (``seq``) at most one
first record and, when that one was ``waiting``, one final record after it. Later copies of an
accepted entry are duplicates and change nothing (first wins). A ``RETRY`` entry, written by
``resume --retry-failed``, withdraws a failed record so the instance can run again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from shardflow.engine.results import LABELS, Status, parse_line
from shardflow.store.journal import Damage, Entry, SeqSet, scan_journal

RETRY = 15
"""Journal status code of a withdrawal: the payload is the line number of the failed record
that a retry replaces (not a :class:`Status`: it never reaches the output)."""
_WAITING = int(Status.WAITING)
_FAILED = int(Status.FAILED)


def verified(path: Path) -> Iterator[Entry | Damage]:
    """The journal's lines; an intact entry whose payload is not a result record (or whose
    record disagrees with the entry's status) is damage too: it never reaches the output."""
    for item in scan_journal(path):
        if isinstance(item, Damage) or item.status == RETRY:
            yield item
            continue
        if item.status >= len(LABELS):
            yield Damage(item.number, f"unknown status code {item.status}")
            continue
        try:
            record = parse_line(item.line)
        except ValueError as exc:
            yield Damage(item.number, f"the record is not a result record: {exc}")
            continue
        if record["status"] != LABELS[item.status]:
            yield Damage(item.number, f"the record's status {record['status']!r} is not "
                         f"the entry's ({LABELS[item.status]!r})")
            continue
        yield item


_REJECT, _FIRST, _CONTINUATION = 0, 1, 2


@dataclass(slots=True)
class _Rules:
    """The acceptance rules, applied in journal order (each pass uses a fresh copy)."""

    withdrawn: set[int] = field(default_factory=set)
    """Line numbers of failed records a RETRY entry withdrew (known after the first pass)."""
    first: SeqSet = field(default_factory=SeqSet)
    final: SeqSet = field(default_factory=SeqSet)

    def accept(self, entry: Entry) -> int:
        """``_REJECT`` (a duplicate or withdrawn), ``_FIRST`` (the instance's first record)
        or ``_CONTINUATION`` (the final record of an instance that waited)."""
        if entry.number in self.withdrawn:
            return _REJECT
        seq = entry.seq
        if entry.status == _WAITING:
            return _FIRST if seq not in self.final and self.first.add(seq) else _REJECT
        if not self.final.add(seq):
            return _REJECT
        return _FIRST if self.first.add(seq) else _CONTINUATION

    def withdraw(self, seq: int) -> None:
        self.final.discard(seq)
        self.first.discard(seq)


@dataclass
class JournalState:
    """What the journal says, from one pass over it (:func:`read_state`)."""

    done: SeqSet = field(default_factory=SeqSet)
    """Input positions with an accepted record: a resume skips them."""
    counts: Counter[str] = field(default_factory=Counter)
    """Each instance counted once, by its latest status."""
    finished_after_wait: set[int] = field(default_factory=set)
    """Waiting instances whose final record is journalled (a crash may have come before the
    task store heard of it)."""
    damage: list[Damage] = field(default_factory=list)
    torn: bool = False
    duplicates: int = 0
    withdrawn: set[int] = field(default_factory=set)
    failed_lines: dict[int, int] = field(default_factory=dict)
    """seq -> journal line of each failed first record (what ``--retry-failed`` re-runs)."""
    failed_attempts: dict[int, int] = field(default_factory=dict)
    """seq -> ``attempts`` of that failed record."""
    retried: dict[int, int] = field(default_factory=dict)
    """seq -> attempts so far of each instance a ``RETRY`` entry withdrew and no record
    answered since: its next run is attempt ``retried[seq] + 1``."""


def intact_entries(path: Path) -> Iterator[Entry]:
    """Every entry that passes verification, lazily (``--repair`` rewrites the journal)."""
    return (item for item in verified(path) if isinstance(item, Entry))


def read_state(path: Path) -> JournalState:
    state = JournalState()
    rules = _Rules()
    for item in verified(path):
        if isinstance(item, Damage):
            if item.torn:
                state.torn = True
            else:
                state.damage.append(item)
            continue
        if item.status == RETRY:
            _withdraw(state, rules, item)
            continue
        kind = rules.accept(item)
        if kind == _REJECT:
            state.duplicates += 1
            continue
        state.done.add(item.seq)
        state.retried.pop(item.seq, None)
        if kind == _CONTINUATION:
            state.counts["waiting"] -= 1
            state.finished_after_wait.add(item.seq)
        elif item.status == _FAILED:
            state.failed_lines[item.seq] = item.number
            state.failed_attempts[item.seq] = _attempts(item.line)
        state.counts[LABELS[item.status]] += 1
    state.counts = +state.counts
    return state


def _withdraw(state: JournalState, rules: _Rules, entry: Entry) -> None:
    number = int(entry.line)
    if state.failed_lines.get(entry.seq) != number:
        return  # a copy of a withdrawal already applied: nothing to do
    del state.failed_lines[entry.seq]
    state.retried[entry.seq] = state.failed_attempts.pop(entry.seq, 1)
    state.withdrawn.add(number)
    rules.withdraw(entry.seq)
    state.done.discard(entry.seq)
    state.counts["failed"] -= 1


def _attempts(line: bytes) -> int:
    """A verified result record's ``attempts`` (failed records only: few, and read once)."""
    value = orjson.loads(line).get("attempts")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 1


def expected_output(path: Path, withdrawn: set[int], *, ordered: bool) -> Iterator[bytes]:
    """The lines a regular output file must hold, from the journal's accepted records: one
    line per instance, its latest record, where its first record stood (journal order, or
    input order when ``ordered``). An instance that waited for people and was continued has
    its final record in place of its ``waiting`` line, so every id appears exactly once.
    Two passes: the first keeps only the continuations (one per instance that waited)."""
    rules = _Rules(withdrawn=set(withdrawn))
    final: dict[int, bytes] = {}
    for item in _accepted(path, rules):
        if item[0] == _CONTINUATION:
            final[item[1].seq] = item[1].line
    rules = _Rules(withdrawn=set(withdrawn))
    held: list[tuple[int, bytes]] = []
    for kind, entry in _accepted(path, rules):
        if kind != _FIRST:
            continue
        line = final.get(entry.seq, entry.line)
        if ordered:
            held.append((entry.seq, line))
        else:
            yield line
    held.sort(key=lambda pair: pair[0])
    for _, line in held:
        yield line


def _accepted(path: Path, rules: _Rules) -> Iterator[tuple[int, Entry]]:
    for item in verified(path):
        if isinstance(item, Damage) or item.status == RETRY:
            continue
        kind = rules.accept(item)
        if kind != _REJECT:
            yield kind, item
