"""The human-task store: waiting instances and their tasks, durable, shared by processes.

:class:`SQLiteTaskStore` (stdlib ``sqlite3``, WAL mode) is the default: one file in the run
directory that the coordinator writes, ``shardflow tasks`` reads and completes from other
processes, and ``resume`` reads back. Completing a task is a single conditional UPDATE, so of
two concurrent completions exactly one succeeds, whichever process they come from.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

from shardflow.errors import TaskAlreadyCompletedError, TaskNotFoundError
from shardflow.model.tasks import HumanTask


@dataclass(frozen=True, slots=True)
class WaitingInstance:
    """A parked instance: its snapshot, its tasks, and where it came from (``seq``)."""

    instance_id: str
    workflow: str
    version: str
    seq: int
    state: dict[str, Any]
    tasks: list[HumanTask]


class TaskStore(Protocol):
    def save_waiting(self, instances: Iterable[WaitingInstance]) -> None: ...

    def list_tasks(self, *, assignee: str | None = None, open_only: bool = True) -> list[HumanTask]: ...

    def get_task(self, task_id: str) -> HumanTask: ...

    def complete_task(self, task_id: str, data: dict[str, Any], user: str | None) -> HumanTask: ...

    def ready_instances(self) -> list[WaitingInstance]: ...

    def get_waiting(self, instance_id: str) -> WaitingInstance | None: ...

    def mark_finished(self, instance_ids: Iterable[str]) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (
    instance_id TEXT PRIMARY KEY, workflow TEXT NOT NULL, version TEXT NOT NULL,
    seq INTEGER NOT NULL, state BLOB NOT NULL, status TEXT NOT NULL, updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY, instance_id TEXT NOT NULL, node TEXT NOT NULL, step TEXT NOT NULL,
    title TEXT NOT NULL, form_schema BLOB, assignee TEXT, due_at REAL, created_at REAL NOT NULL,
    completed_at REAL, completed_by TEXT, data BLOB
);
CREATE INDEX IF NOT EXISTS tasks_by_instance ON tasks(instance_id);
CREATE INDEX IF NOT EXISTS tasks_open ON tasks(completed_at, assignee);
"""

_TASK_COLUMNS = ("id, instance_id, node, step, title, form_schema, assignee, due_at, created_at, "
                 "completed_at, completed_by, data")


def _task(row: tuple[Any, ...]) -> HumanTask:
    return HumanTask(
        id=row[0], instance_id=row[1], node=row[2], step=row[3], title=row[4],
        form_schema=orjson.loads(row[5]) if row[5] else None, assignee=row[6], due_at=row[7],
        created_at=row[8], completed_at=row[9], completed_by=row[10],
        data=orjson.loads(row[11]) if row[11] else None,
    )


class SQLiteTaskStore:
    """:class:`TaskStore` in one SQLite file (WAL mode, safe for several processes)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def save_waiting(self, instances: Iterable[WaitingInstance]) -> None:
        """Store parked instances and their new tasks in one transaction. Saving an instance
        again (it was re-run after a crash) replaces its state and its still-open tasks."""
        now = time.time()
        with self._transaction() as db:
            for inst in instances:
                db.execute(
                    "INSERT OR REPLACE INTO instances VALUES (?, ?, ?, ?, ?, 'waiting', ?)",
                    (inst.instance_id, inst.workflow, inst.version, inst.seq,
                     orjson.dumps(inst.state), now))
                db.execute("DELETE FROM tasks WHERE instance_id = ? AND completed_at IS NULL",
                           (inst.instance_id,))
                db.executemany(
                    f"INSERT OR IGNORE INTO tasks ({_TASK_COLUMNS}) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL)",
                    [(t.id, t.instance_id, t.node, t.step, t.title,
                      orjson.dumps(t.form_schema) if t.form_schema is not None else None,
                      t.assignee, t.due_at, t.created_at) for t in inst.tasks])

    def list_tasks(self, *, assignee: str | None = None, open_only: bool = True) -> list[HumanTask]:
        query = f"SELECT {_TASK_COLUMNS} FROM tasks WHERE 1=1"
        args: list[Any] = []
        if open_only:
            query += " AND completed_at IS NULL"
        if assignee is not None:
            query += " AND assignee = ?"
            args.append(assignee)
        return [_task(row) for row in self._db.execute(query + " ORDER BY created_at, id", args)]

    def get_task(self, task_id: str) -> HumanTask:
        row = self._db.execute(f"SELECT {_TASK_COLUMNS} FROM tasks WHERE id = ?",
                               (task_id,)).fetchone()
        if row is None:
            raise TaskNotFoundError(task_id)
        return _task(row)

    def complete_task(self, task_id: str, data: dict[str, Any], user: str | None) -> HumanTask:
        """Record the data once: a second completion, from any process, is refused."""
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE tasks SET completed_at = ?, completed_by = ?, data = ? "
                "WHERE id = ? AND completed_at IS NULL",
                (time.time(), user, orjson.dumps(data), task_id))
            if cursor.rowcount == 0:
                exists = db.execute("SELECT 1 FROM tasks WHERE id = ?", (task_id,)).fetchone()
                if exists is None:
                    raise TaskNotFoundError(task_id)
                raise TaskAlreadyCompletedError(task_id)
        return self.get_task(task_id)

    def ready_instances(self) -> list[WaitingInstance]:
        """Waiting instances none of whose tasks is still open."""
        rows = self._db.execute(
            "SELECT instance_id, workflow, version, seq, state FROM instances i "
            "WHERE status = 'waiting' AND NOT EXISTS (SELECT 1 FROM tasks t WHERE "
            "t.instance_id = i.instance_id AND t.completed_at IS NULL) ORDER BY seq").fetchall()
        ready = []
        for instance_id, workflow, version, seq, state in rows:
            tasks = [_task(r) for r in self._db.execute(
                f"SELECT {_TASK_COLUMNS} FROM tasks WHERE instance_id = ?", (instance_id,))]
            ready.append(WaitingInstance(instance_id, workflow, version, seq,
                                         orjson.loads(state), tasks))
        return ready

    def get_waiting(self, instance_id: str) -> WaitingInstance | None:
        """A waiting instance with all its tasks (completed ones carry their data)."""
        row = self._db.execute(
            "SELECT instance_id, workflow, version, seq, state FROM instances "
            "WHERE instance_id = ? AND status = 'waiting'", (instance_id,)).fetchone()
        if row is None:
            return None
        tasks = [_task(r) for r in self._db.execute(
            f"SELECT {_TASK_COLUMNS} FROM tasks WHERE instance_id = ?", (instance_id,))]
        return WaitingInstance(row[0], row[1], row[2], row[3], orjson.loads(row[4]), tasks)

    def waiting_count(self) -> int:
        row = self._db.execute("SELECT COUNT(*) FROM instances WHERE status = 'waiting'").fetchone()
        return int(row[0])

    def mark_finished(self, instance_ids: Iterable[str]) -> None:
        with self._transaction() as db:
            db.executemany("UPDATE instances SET status = 'finished', updated_at = ? "
                           "WHERE instance_id = ?", [(time.time(), i) for i in instance_ids])
