"""The run directory: what a run needs to be resumed after a crash or an interrupt.

``.shardflow/runs/<run-id>/`` holds ``run.json`` (the workflow, the input and its fingerprint,
the output path and the effective config), ``journal.jsonl`` (every finished instance),
``tasks.db`` (waiting instances and human tasks, SQLite) and ``summary.json``.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from shardflow.batch.config import RunConfig
from shardflow.errors import ConfigError
from shardflow.store.tasks import SQLiteTaskStore

DEFAULT_BASE = Path(".shardflow") / "runs"
LAST_RUN = Path(".shardflow") / "last-run"
"""Where the newest run of this directory is (``shardflow tasks`` looks there first)."""


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def input_fingerprint(path: str | None, fmt: str | None, generate: int | None) -> dict[str, Any]:
    """What identifies the input, so a resume can refuse a different one."""
    if generate is not None:
        return {"generate": generate}
    assert path is not None
    if path == "-":
        return {"stdin": True}
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return {"path": str(Path(path).resolve()), "format": fmt, "size": size,
            "sha256": digest.hexdigest()}


@dataclass
class RunRecord:
    run_id: str
    target: str
    workflow: dict[str, Any]
    input: dict[str, Any]
    output: str | None
    config: dict[str, Any]
    started_at: float = field(default_factory=time.time)
    finished: bool = False

    def run_config(self) -> RunConfig:
        return RunConfig(**self.config)


class RunDir:
    """One run's directory; ``record`` is its ``run.json``."""

    def __init__(self, path: Path, record: RunRecord) -> None:
        self.path = path
        self.record = record
        self._tasks: SQLiteTaskStore | None = None

    @classmethod
    def create(cls, path: Path | None, record: RunRecord) -> RunDir:
        target = path or DEFAULT_BASE / record.run_id
        if (target / "run.json").exists():
            raise ConfigError("run_dir", f"{target} already holds a run; resume it with "
                              f"'shardflow resume {target}' or choose another --run-dir")
        target.mkdir(parents=True, exist_ok=True)
        run_dir = cls(target, record)
        run_dir.save()
        LAST_RUN.parent.mkdir(parents=True, exist_ok=True)
        LAST_RUN.write_text(str(target.resolve()))
        return run_dir

    @classmethod
    def open(cls, path: Path) -> RunDir:
        file = path / "run.json"
        if not file.exists():
            raise ConfigError("run_dir", f"{path} is not a shardflow run directory (no run.json)")
        return cls(path, RunRecord(**orjson.loads(file.read_bytes())))

    def save(self) -> None:
        """Write ``run.json`` atomically (a crash leaves the old or the new one)."""
        tmp = self.path / "run.json.tmp"
        tmp.write_bytes(orjson.dumps(asdict(self.record), option=orjson.OPT_INDENT_2))
        os.replace(tmp, self.path / "run.json")

    @property
    def journal_path(self) -> Path:
        return self.path / "journal.jsonl"

    @property
    def summary_path(self) -> Path:
        return self.path / "summary.json"

    @property
    def tasks_path(self) -> Path:
        return self.path / "tasks.db"

    def task_store(self) -> SQLiteTaskStore:
        if self._tasks is None:
            self._tasks = SQLiteTaskStore(self.tasks_path)
        return self._tasks

    def close(self) -> None:
        if self._tasks is not None:
            self._tasks.close()
            self._tasks = None


def latest_run_dirs(base: Path = DEFAULT_BASE) -> list[Path]:
    """The last run started here, then the run directories under ``base``, newest first."""
    found: list[Path] = []
    if LAST_RUN.exists():
        last = Path(LAST_RUN.read_text().strip())
        if (last / "run.json").exists():
            found.append(last)
    if base.is_dir():
        runs = [p for p in base.iterdir() if (p / "run.json").exists()]
        found += sorted(runs, key=lambda p: p.stat().st_mtime, reverse=True)
    unique: list[Path] = []
    for path in found:
        if path.resolve() not in [u.resolve() for u in unique]:
            unique.append(path)
    return unique
