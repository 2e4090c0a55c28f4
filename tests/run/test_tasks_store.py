"""The task store keeps ids typed and turns a damaged file into one clear error."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
import pytest

from shardflow.batch.jobs import Job
from shardflow.run.journal_ledger import JournalLedger, resume_job
from shardflow.store.journal import FileJournal
from shardflow.store.tasks import SQLiteTaskStore, TaskStoreError


def _snapshot(instance_id: str, task_id: str) -> bytes:
    task = {"id": task_id, "instance_id": instance_id, "node": "n", "step": "s", "title": "T",
            "form_schema": None, "assignee": None, "due_at": None, "created_at": 1.0}
    return orjson.dumps({"state": {"format": 1}, "tasks": [task]})


def test_ids_1_and_string_1_are_two_waiting_instances(tmp_path: Path) -> None:
    store = SQLiteTaskStore(tmp_path / "tasks.db")
    ledger = JournalLedger(FileJournal(tmp_path / "journal"), lambda: store, "wf", "1")
    # the engine spells both ids "1" in its snapshot; the ledger keys them by JSON text
    ledger.parked([(Job(0, 1, b""), _snapshot("1", "a")), (Job(1, "1", b""), _snapshot("1", "b"))])
    assert store.waiting_count() == 2
    assert sorted((t.instance_id, t.id) for t in store.list_tasks()) == [('"1"', "b"), ("1", "a")]
    store.complete_task("a", {}, None)
    assert [w.instance_id for w in store.ready_instances()] == ["1"]
    store.complete_task("b", {}, None)
    ready = store.ready_instances()
    assert [(w.instance_id, resume_job(w).id) for w in ready] == [("1", 1), ('"1"', "1")]
    ledger.close()


def test_a_damaged_page_is_a_task_store_error(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    store = SQLiteTaskStore(db)
    store.close()
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")
    raw = bytearray(db.read_bytes())
    raw[4096:] = b"\xff" * (len(raw) - 4096)  # every page but the schema
    db.write_bytes(bytes(raw))
    with pytest.raises(TaskStoreError, match="damaged"):
        SQLiteTaskStore(db).list_tasks()
