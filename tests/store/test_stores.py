"""The task store and the journal on their own: atomic completion, restart, torn lines."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from shardflow import LocalExecutionEngine, TaskAlreadyCompletedError, WorkflowRegistry
from shardflow.examples import approvals
from shardflow.model.tasks import HumanTask
from shardflow.store.journal import Entry, FileJournal, SeqSet, cut_torn_tail, scan_journal
from shardflow.store.tasks import SQLiteTaskStore, WaitingInstance


def _waiting(instance_id: str, task_ids: list[str]) -> WaitingInstance:
    tasks = [HumanTask(id=t, instance_id=instance_id, node="n", step="s", title="T",
                       form_schema=None, assignee="ann", due_at=None, created_at=1.0)
             for t in task_ids]
    return WaitingInstance(instance_id, "wf", "1.0.0", 0, {"format": 1}, tasks)


def test_completion_is_atomic_across_connections(tmp_path: Path) -> None:
    path = tmp_path / "tasks.db"
    SQLiteTaskStore(path).save_waiting([_waiting("i1", ["t1"])])
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def complete() -> None:
        store = SQLiteTaskStore(path)  # a connection of its own, as another process has
        barrier.wait()
        try:
            store.complete_task("t1", {"ok": True}, "me")
            outcomes.append("won")
        except TaskAlreadyCompletedError:
            outcomes.append("refused")
        finally:
            store.close()

    threads = [threading.Thread(target=complete) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["refused"] * 7 + ["won"]


def test_ready_instances_need_every_task_completed(tmp_path: Path) -> None:
    store = SQLiteTaskStore(tmp_path / "tasks.db")
    store.save_waiting([_waiting("i1", ["a", "b"]), _waiting("i2", ["c"])])
    assert [t.id for t in store.list_tasks(assignee="ann")] == ["a", "b", "c"]
    store.complete_task("a", {}, None)
    store.complete_task("c", {}, None)
    assert [w.instance_id for w in store.ready_instances()] == ["i2"]
    store.save_waiting([_waiting("i1", ["a", "b2"])])  # re-run after a crash: open tasks replaced
    assert {t.id for t in store.list_tasks()} == {"b2"}
    store.mark_finished(["i2"])
    assert store.ready_instances() == []


def test_engine_restarts_with_its_store(run: Any, tmp_path: Path) -> None:
    path = tmp_path / "engine.db"

    def engine() -> LocalExecutionEngine:
        registry = WorkflowRegistry()
        registry.register_definition(approvals.workflow)
        return LocalExecutionEngine(registry, store=SQLiteTaskStore(path))

    async def before_restart() -> str:
        first = engine()
        instance = await first.start_workflow("parallel_approvals", {"id": 7})
        legal = next(t for t in first.pending_tasks() if t.step == "legal_approval")
        await first.complete_human_task(legal.id, {"approved": True})
        return instance.id

    async def after_restart(instance_id: str) -> dict[str, Any]:
        second = engine()
        pending = second.pending_tasks(instance_id)
        assert sorted(t.step for t in pending) == ["finance_approval", "security_approval"]
        assert second.get_instance(instance_id).status == "waiting"
        for task in pending:
            instance = await second.complete_human_task(
                task.id, {"approved": True, "risk_level": "low"})
        with pytest.raises(TaskAlreadyCompletedError):
            await second.complete_human_task(pending[0].id, {"approved": True, "risk_level": "low"})
        assert instance.status == "completed"
        return instance.context.data

    data = run(after_restart(run(before_restart())))
    assert data["all_approved"] is True and data["legal_approval"] == {"approved": True}


def test_journal_skips_and_repairs_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal = FileJournal(path)
    for seq in range(3):
        journal.append(seq, 0, b'{"id":%d}' % seq)
    journal.close()
    with open(path, "ab") as fh:
        fh.write(b'3\t0\t{"id":')
    items = list(scan_journal(path))
    assert [i.seq for i in items if isinstance(i, Entry)] == [0, 1, 2]
    assert items[-1].number == 4 and not isinstance(items[-1], Entry) and items[-1].torn
    cut_torn_tail(path)
    assert path.read_bytes().endswith(b'{"id":2}\n')
    done = SeqSet()
    for seq in (0, 2, 1_000_000):
        done.add(seq)
    assert 0 in done and 2 in done and 1 not in done and 1_000_000 in done and done.count == 3
