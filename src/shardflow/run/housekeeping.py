"""``shardflow runs``: what run directories there are, and removing old ones.

Run directories pile up (each holds a journal with every result and a task store with every
waiting context); ``runs list`` shows them and ``runs prune`` removes finished or abandoned
ones older than a given age. A run held by a live process is never pruned.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from shardflow.errors import ConfigError, ShardflowError
from shardflow.run.errors import RunLockedError
from shardflow.run.lock import RunLock, holder
from shardflow.run.record import RunRecord, parse_record
from shardflow.run.rundir import DEFAULT_BASE, run_dirs

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_age(text: str) -> float:
    """``90s``, ``30m``, ``12h``, ``7d``, ``2w`` in seconds."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhdw])", text.strip())
    if match is None:
        raise ConfigError("older_than", f"{text!r} is not an age like 30m, 12h, 7d or 2w")
    return float(match[1]) * _UNITS[match[2]]


@dataclass(frozen=True, slots=True)
class RunInfo:
    path: Path
    run_id: str
    started_at: float | None
    status: str
    """``running`` (a live process holds it), ``finished``, ``unfinished`` or ``damaged``."""
    counts: dict[str, int]
    size: int
    target: str | None = None
    """The workflow reference the run ran (``orders:workflow``)."""
    output: str | None = None
    """Where its results went (``None``: stdout, or unknown for a damaged run)."""
    record: RunRecord | None = None


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _counts(path: Path) -> dict[str, int]:
    try:
        summary = parse_json_object(path / "summary.json")
    except (OSError, ValueError):
        return {}
    totals = summary.get("run_totals")
    if not isinstance(totals, dict):
        return {}
    return {k: v for k, v in totals.items() if isinstance(v, int)}


def parse_json_object(path: Path) -> dict[str, object]:
    data = orjson.loads(path.read_bytes())
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return data


def describe_run(path: Path) -> RunInfo:
    record: RunRecord | None
    try:
        record = parse_record(path / "run.json", (path / "run.json").read_bytes())
    except (OSError, ShardflowError):
        record = None
    pid = holder(path)
    if pid is not None:
        status = "running"
    elif record is None:
        status = "damaged"
    else:
        status = "finished" if record.finished else "unfinished"
    return RunInfo(path, record.run_id if record else path.name,
                   record.started_at if record else None, status, _counts(path), _size(path),
                   record.target if record else None, record.output if record else None, record)


def list_runs(base: Path = DEFAULT_BASE, extra: Sequence[Path] = ()) -> list[RunInfo]:
    """Every run under ``base`` and in ``extra`` (the ``--run-dir`` runs seen here), newest
    first (by when it started)."""
    paths = run_dirs(base)
    seen = {p.resolve() for p in paths}
    paths += [p for p in extra if p.resolve() not in seen]
    runs = [describe_run(path) for path in paths]
    return sorted(runs, key=lambda r: r.started_at or r.path.stat().st_mtime, reverse=True)


def prune_runs(base: Path, older_than: float, keep: int = 0, *,
               now: float | None = None) -> list[RunInfo]:
    """Remove runs that started more than ``older_than`` seconds ago, except the ``keep``
    newest and any run a live process holds; returns the removed ones."""
    now = time.time() if now is None else now
    removed = []
    for index, info in enumerate(list_runs(base)):
        if index < keep or info.status == "running":
            continue
        if now - (info.started_at or info.path.stat().st_mtime) > older_than:
            try:  # held while removing: a resume starting meanwhile is refused, not deleted
                lock = RunLock(info.path).acquire()
            except RunLockedError:
                continue
            try:
                shutil.rmtree(info.path)
            finally:
                lock.release()
            removed.append(info)
    return removed
