"""A run's failed instances, read back from its journal (``shardflow runs show --failed``).

The journal holds every instance's latest record, so the answer is the run's as it stands:
an instance that ``resume --retry-failed`` brought to an end is no longer listed. Reading
takes no lock: a run still going is read up to its last complete entry.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from shardflow._text import did_you_mean
from shardflow.batch.failure_digest import failure_key
from shardflow.errors import ConfigError
from shardflow.run.journal_state import expected_output, read_state
from shardflow.run.rundir import DEFAULT_BASE, run_dirs

BAD = ("failed", "invalid_input")


def find_run(name: str, base: Path = DEFAULT_BASE, known: Sequence[Path] = ()) -> Path:
    """The run directory ``name`` names: a path, or a run id under ``base`` or among the
    ``known`` ``--run-dir`` runs; else an error naming the closest run id."""
    path = Path(name)
    if (path / "run.json").is_file():
        return path
    candidates = [*run_dirs(base), *known]
    for candidate in candidates:
        if candidate.name == name:
            return candidate
    hint = did_you_mean(name, [c.name for c in candidates])
    raise ConfigError("run", f"no run {name!r}{hint}: give a run directory, or a run id "
                      f"under {base} ('shardflow runs list' shows them)")


def failed_records(run_dir: Path) -> Iterator[dict[str, Any]]:
    """Each failed or invalid instance of the run: ``id``, ``status``, ``step``, ``type``,
    ``message``, ``attempts`` (and ``line``/``source`` for invalid input), input order not
    guaranteed (journal order)."""
    journal = run_dir / "journal.jsonl"
    if not journal.is_file():
        return
    state = read_state(journal)
    for line in expected_output(journal, state.withdrawn, ordered=False):
        record = orjson.loads(line)
        if record.get("status") not in BAD:
            continue
        step, kind, message = failure_key(record, limit=None)
        found = {"id": record.get("id"), "status": record["status"], "step": step, "type": kind,
                 "message": message, "attempts": record.get("attempts")}
        error = record.get("error") or {}
        for extra in ("source", "line"):
            if error.get(extra) is not None:
                found[extra] = error[extra]
        yield found
