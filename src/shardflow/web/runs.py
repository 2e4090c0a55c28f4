"""The runs a server serves: each a run directory with a ``tasks.db``, known by a short name.

Names come from the directories, never the other way round: a run name in a URL is looked up
in this table and is never joined to a path, so ``..`` or ``/etc`` in a URL cannot reach a file.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from shardflow.errors import ConfigError, ShardflowError
from shardflow.store.tasks import SQLiteTaskStore

TASKS_FILE = "tasks.db"


class UnknownRunError(ShardflowError):
    """A request named a run this server does not serve (``.name``)."""

    def __init__(self, name: str, served: Iterable[str]) -> None:
        self.name = name
        super().__init__(f"no run named {name!r} is served here (served: {', '.join(served)})")


@dataclass(frozen=True, slots=True)
class ServedRun:
    name: str
    path: Path

    @property
    def tasks_path(self) -> Path:
        return self.path / TASKS_FILE

    @contextmanager
    def store(self) -> Iterator[SQLiteTaskStore]:
        """A connection of its own for one request: requests run on worker threads, and one
        sqlite3 connection must not be shared between threads."""
        store = SQLiteTaskStore(self.tasks_path)
        try:
            yield store
        finally:
            store.close()


class RunTable:
    """The served runs by name, in the order they were given."""

    def __init__(self, paths: Iterable[Path]) -> None:
        self._runs: dict[str, ServedRun] = {}
        for path in paths:
            path = path.resolve()
            if not (path / TASKS_FILE).is_file():
                raise ConfigError("run_dir", f"{path} has no human tasks (no {TASKS_FILE})")
            if any(run.path == path for run in self._runs.values()):
                continue
            name, n = path.name, 1
            while name in self._runs:
                n += 1
                name = f"{path.name}-{n}"
            self._runs[name] = ServedRun(name, path)
        if not self._runs:
            raise ConfigError("run_dir", "no run with human tasks to serve; pass RUN_DIR")

    def __iter__(self) -> Iterator[ServedRun]:
        return iter(self._runs.values())

    def names(self) -> list[str]:
        return list(self._runs)

    def get(self, name: str) -> ServedRun:
        run = self._runs.get(name)
        if run is None:
            raise UnknownRunError(name, self._runs)
        return run
