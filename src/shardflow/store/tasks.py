"""The human-task store: waiting instances and their tasks, durable, shared by processes.

:class:`SQLiteTaskStore` (stdlib ``sqlite3``, WAL mode) is the default: one file in the run
directory that the coordinator writes, ``shardflow tasks`` reads and completes from other
processes, and ``resume`` reads back. Completing a task is a single conditional UPDATE, so of
two concurrent completions exactly one succeeds, whichever process they come from.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

from shardflow.errors import ShardflowError, TaskAlreadyCompletedError, TaskNotFoundError
from shardflow.model.tasks import HUMAN, TIMER, HumanTask


class TaskStoreError(ShardflowError):
    """``tasks.db`` cannot be read: it is damaged or not a SQLite database (``.path``)."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        super().__init__(f"{path}: {reason} (the human-task store is damaged or not a "
                         "shardflow tasks.db)")


@dataclass(frozen=True, slots=True)
class WaitingInstance:
    """A parked instance: its snapshot, its tasks, and where it came from (``seq``).

    ``instance_id`` is the store's key. A batch run keys instances by their input id's JSON
    text (``1`` and ``"1"`` are two instances) and keeps the id itself, typed as the input
    spelled it, in ``input_id``, so the resumed instance's output line carries the same id."""

    instance_id: str
    workflow: str
    version: str
    seq: int
    state: dict[str, Any]
    tasks: list[HumanTask]
    input_id: Any = None


class TaskStore(Protocol):
    def save_waiting(self, instances: Iterable[WaitingInstance]) -> None: ...

    def list_tasks(self, *, assignee: str | None = None, open_only: bool = True,
                   kinds: Iterable[str] | None = None) -> list[HumanTask]: ...

    def unclassified(self) -> list[tuple[str, str]]: ...

    def classify(self, workflow: str, kinds: dict[str, str], version: str | None = None
                 ) -> int: ...

    def get_task(self, task_id: str) -> HumanTask: ...

    def complete_task(self, task_id: str, data: dict[str, Any], user: str | None) -> HumanTask: ...

    def ready_instances(self) -> list[WaitingInstance]: ...

    def get_waiting(self, instance_id: str) -> WaitingInstance | None: ...

    def mark_finished(self, instance_ids: Iterable[str]) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (
    instance_id TEXT PRIMARY KEY, workflow TEXT NOT NULL, version TEXT NOT NULL,
    seq INTEGER NOT NULL, state BLOB NOT NULL, status TEXT NOT NULL, updated_at REAL NOT NULL,
    input_id BLOB
);
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY, instance_id TEXT NOT NULL, node TEXT NOT NULL, step TEXT NOT NULL,
    title TEXT NOT NULL, form_schema BLOB, assignee TEXT, due_at REAL, created_at REAL NOT NULL,
    completed_at REAL, completed_by TEXT, data BLOB, description TEXT, display BLOB, kind TEXT
);
CREATE INDEX IF NOT EXISTS tasks_by_instance ON tasks(instance_id);
CREATE INDEX IF NOT EXISTS tasks_open ON tasks(completed_at, assignee);
"""

_TASK_COLUMNS = ("id, instance_id, node, step, title, form_schema, assignee, due_at, created_at, "
                 "completed_at, completed_by, data, description, display, kind")
_ADDED_COLUMNS = (("description", "TEXT"), ("display", "BLOB"), ("kind", "TEXT"))
"""Task columns newer than the first tasks.db: added to an older file when it is opened.
Rows written before ``kind`` existed hold NULL there until :meth:`SQLiteTaskStore.classify`
(which knows the workflow) says what they are; until then they count as human tasks, as
the code that wrote them showed them."""


def _task(row: tuple[Any, ...]) -> HumanTask:
    return HumanTask(
        id=row[0], instance_id=row[1], node=row[2], step=row[3], title=row[4],
        form_schema=orjson.loads(row[5]) if row[5] else None, assignee=row[6], due_at=row[7],
        created_at=row[8], completed_at=row[9], completed_by=row[10],
        data=orjson.loads(row[11]) if row[11] else None,
        description=row[12], display=orjson.loads(row[13]) if row[13] else None,
        kind=row[14] or HUMAN,
    )


_IO_ERRORS = (("disk is full", errno.ENOSPC), ("disk i/o error", errno.EIO))


def storage_error(exc: sqlite3.Error, path: Path) -> OSError | None:
    """SQLite's "database or disk is full" / "disk I/O error" as the :class:`OSError` the run
    reports for every file it cannot write (``None`` for other SQLite errors)."""
    text = str(exc).lower()
    for needle, code in _IO_ERRORS:
        if needle in text:
            return OSError(code, os.strerror(code), str(path))
    return None


class SQLiteTaskStore:
    """:class:`TaskStore` in one SQLite file (WAL mode, safe for several processes).

    A new file is created private (0600; SQLite gives its -wal and -shm files the same mode):
    it holds every waiting instance's context."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._add_columns()
            self._db.execute("SELECT instance_id, input_id FROM instances LIMIT 1").fetchall()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise self._error(exc) from None

    def _add_columns(self) -> None:
        """Bring a tasks.db written by an earlier version up to :data:`_TASK_COLUMNS`; of two
        processes opening it at once, the second finds the column there."""
        have = {row[1] for row in self._db.execute("PRAGMA table_info(tasks)")}
        for name, kind in _ADDED_COLUMNS:
            if name not in have:
                try:
                    self._db.execute(f"ALTER TABLE tasks ADD COLUMN {name} {kind}")
                except sqlite3.OperationalError as exc:
                    if "duplicate column" not in str(exc):
                        raise
        # the next due timer (``next_due``), asked four times a second by a run's timer watch
        self._db.execute("CREATE INDEX IF NOT EXISTS tasks_due ON tasks(kind, completed_at, due_at)")

    def _error(self, exc: sqlite3.Error) -> Exception:
        return storage_error(exc, self.path) or TaskStoreError(self.path, str(exc))

    def close(self) -> None:
        self._db.close()

    def _rows(self, sql: str, args: Iterable[Any] = ()) -> list[Any]:
        """A read query; a damaged page found by it becomes a :class:`TaskStoreError`."""
        try:
            return self._db.execute(sql, tuple(args)).fetchall()
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from None

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from None

    def save_waiting(self, instances: Iterable[WaitingInstance]) -> None:
        """Store parked instances and their new tasks in one transaction. Saving an instance
        again (it was re-run after a crash) replaces its state and its still-open tasks."""
        now = time.time()
        with self._transaction() as db:
            for inst in instances:
                db.execute(
                    "INSERT OR REPLACE INTO instances VALUES (?, ?, ?, ?, ?, 'waiting', ?, ?)",
                    (inst.instance_id, inst.workflow, inst.version, inst.seq,
                     orjson.dumps(inst.state), now, orjson.dumps(inst.input_id)))
                db.execute("DELETE FROM tasks WHERE instance_id = ? AND completed_at IS NULL",
                           (inst.instance_id,))
                db.executemany(
                    f"INSERT OR IGNORE INTO tasks ({_TASK_COLUMNS}) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, ?, ?, ?)",
                    [(t.id, t.instance_id, t.node, t.step, t.title,
                      orjson.dumps(t.form_schema) if t.form_schema is not None else None,
                      t.assignee, t.due_at, t.created_at, t.description,
                      orjson.dumps(t.display) if t.display is not None else None, t.kind)
                     for t in inst.tasks])

    def list_tasks(self, *, assignee: str | None = None, open_only: bool = True,
                   kinds: Iterable[str] | None = None) -> list[HumanTask]:
        """Tasks, oldest first: open ones only unless ``open_only`` is False, of every kind
        unless ``kinds`` names some (``model/tasks.TASK_KINDS``)."""
        query = f"SELECT {_TASK_COLUMNS} FROM tasks WHERE 1=1"
        args: list[Any] = []
        if open_only:
            query += " AND completed_at IS NULL"
        if assignee is not None:
            query += " AND assignee = ?"
            args.append(assignee)
        if kinds is not None:
            wanted = sorted(set(kinds))
            query += (f" AND COALESCE(kind, '{HUMAN}') IN ({', '.join('?' * len(wanted))})"
                      if wanted else " AND 0")
            args += wanted
        return [_task(row) for row in self._rows(query + " ORDER BY created_at, id", args)]

    def next_due(self, kind: str = TIMER) -> float | None:
        """The earliest ``due_at`` of the open tasks of ``kind`` (a run's next timer)."""
        rows = self._rows("SELECT MIN(due_at) FROM tasks WHERE kind = ? AND completed_at IS NULL",
                          (kind,))
        return rows[0][0] if rows else None

    def unclassified(self) -> list[tuple[str, str]]:
        """``(workflow, version)`` of the instances with tasks written before tasks had kinds
        (none once :meth:`classify` has seen them: one index lookup)."""
        return [(row[0], row[1]) for row in self._rows(
            "SELECT DISTINCT i.workflow, i.version FROM tasks t JOIN instances i "
            "ON i.instance_id = t.instance_id WHERE t.kind IS NULL ORDER BY 1, 2")]

    def classify(self, workflow: str, kinds: dict[str, str], version: str | None = None
                 ) -> int:
        """Give the tasks of ``workflow``'s instances (of one ``version``, if given) written
        before tasks had kinds their kind: ``kinds`` maps node ids to the kind of their tasks
        (timers, webhooks), every other such task is human. Returns how many rows changed."""
        changed = 0
        instances = "instance_id IN (SELECT instance_id FROM instances WHERE workflow = ?"
        of: tuple[str, ...] = (workflow,)
        if version is not None:
            instances += " AND version = ?"
            of += (version,)
        instances += ")"
        with self._transaction() as db:
            for node, kind in sorted(kinds.items()):
                changed += db.execute(f"UPDATE tasks SET kind = ? WHERE kind IS NULL AND node = ? "
                                      f"AND {instances}", (kind, node, *of)).rowcount
            changed += db.execute(f"UPDATE tasks SET kind = '{HUMAN}' WHERE kind IS NULL AND "
                                  f"{instances}", of).rowcount
        return changed

    def get_task(self, task_id: str) -> HumanTask:
        rows = self._rows(f"SELECT {_TASK_COLUMNS} FROM tasks WHERE id = ?", (task_id,))
        if not rows:
            raise TaskNotFoundError(task_id)
        return _task(rows[0])

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
        rows = self._rows(
            "SELECT instance_id, workflow, version, seq, state, input_id FROM instances i "
            "WHERE status = 'waiting' AND NOT EXISTS (SELECT 1 FROM tasks t WHERE "
            "t.instance_id = i.instance_id AND t.completed_at IS NULL) ORDER BY seq")
        ready = []
        for instance_id, workflow, version, seq, state, input_id in rows:
            tasks = [_task(r) for r in self._rows(
                f"SELECT {_TASK_COLUMNS} FROM tasks WHERE instance_id = ?", (instance_id,))]
            ready.append(WaitingInstance(instance_id, workflow, version, seq,
                                         orjson.loads(state), tasks, orjson.loads(input_id)))
        return ready

    def get_waiting(self, instance_id: str) -> WaitingInstance | None:
        """A waiting instance with all its tasks (completed ones carry their data)."""
        rows = self._rows(
            "SELECT instance_id, workflow, version, seq, state, input_id FROM instances "
            "WHERE instance_id = ? AND status = 'waiting'", (instance_id,))
        if not rows:
            return None
        row = rows[0]
        tasks = [_task(r) for r in self._rows(
            f"SELECT {_TASK_COLUMNS} FROM tasks WHERE instance_id = ?", (instance_id,))]
        return WaitingInstance(row[0], row[1], row[2], row[3], orjson.loads(row[4]), tasks,
                               orjson.loads(row[5]))

    def waiting_count(self) -> int:
        rows = self._rows("SELECT COUNT(*) FROM instances WHERE status = 'waiting'")
        return int(rows[0][0])

    def mark_finished(self, instance_ids: Iterable[str]) -> None:
        with self._transaction() as db:
            db.executemany("UPDATE instances SET status = 'finished', updated_at = ? "
                           "WHERE instance_id = ?", [(time.time(), i) for i in instance_ids])
