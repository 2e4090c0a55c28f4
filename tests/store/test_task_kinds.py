"""Task kinds in the store: a task says who completes it (a person, time, a webhook); lists
filter by kind; a ``tasks.db`` written before kinds existed upgrades in place, keeps its rows,
and learns its kinds from the workflow."""

from __future__ import annotations

import shutil
from pathlib import Path

from shardflow.model.tasks import HumanTask
from shardflow.store.tasks import SQLiteTaskStore, WaitingInstance

OLD_DB = Path(__file__).parent / "data" / "tasks-before-kinds.db"
"""Written by main's SQLiteTaskStore before tasks had kinds (main at 11b2488): workflow
``orders``, instance 1 at human step ``approve`` (its task t1 completed), instance 2 at timer
``cool_down`` (t2, due 2000000000), instance 3 at webhook ``wait_payment`` (t3)."""


def _task(task_id: str, node: str, kind: str, due_at: float | None = None) -> HumanTask:
    return HumanTask(id=task_id, instance_id=task_id, node=node, step=node, title=node,
                     form_schema=None, assignee=None, due_at=due_at, created_at=1.0, kind=kind)


def test_tasks_keep_their_kind_and_lists_filter_by_it(tmp_path: Path) -> None:
    store = SQLiteTaskStore(tmp_path / "tasks.db")
    store.save_waiting([WaitingInstance(t.id, "wf", "1", i, {"format": 1}, [t]) for i, t in
                        enumerate([_task("h", "review", "human"), _task("t", "wait", "timer", 50.0),
                                   _task("w", "hook", "webhook"), _task("t2", "wait", "timer", 20.0)])])
    assert [t.id for t in store.list_tasks(kinds=["human"])] == ["h"]
    assert {t.id: t.kind for t in store.list_tasks()} == {
        "h": "human", "t": "timer", "w": "webhook", "t2": "timer"}
    assert sorted(t.id for t in store.list_tasks(kinds=["timer", "webhook"])) == ["t", "t2", "w"]
    assert store.next_due() == 20.0
    store.complete_task("t2", {}, "<timer>")
    assert store.next_due() == 50.0
    assert store.get_task("t2").kind == "timer"


def test_a_tasks_db_from_before_kinds_upgrades_keeps_its_rows_and_learns_its_kinds(
        tmp_path: Path) -> None:
    path = tmp_path / "tasks.db"
    shutil.copy(OLD_DB, path)
    store = SQLiteTaskStore(path)
    everything = {t.id: t for t in store.list_tasks(open_only=False)}
    assert sorted(everything) == ["t1", "t2", "t3"]  # every row kept
    assert everything["t1"].data == {"ok": True} and everything["t1"].completed_by == "ana"
    assert everything["t2"].due_at == 2000000000.0
    # until the workflow says otherwise, old rows are what the old code showed: human tasks
    assert {t.kind for t in everything.values()} == {"human"}
    assert [w.instance_id for w in store.ready_instances()] == ["1"]

    assert store.classify("other", {"cool_down": "timer"}) == 0  # not that workflow's
    assert store.classify("orders", {"cool_down": "timer", "wait_payment": "webhook"}) == 3
    kinds = {t.id: t.kind for t in store.list_tasks(open_only=False)}
    assert kinds == {"t1": "human", "t2": "timer", "t3": "webhook"}
    assert store.next_due() == 2000000000.0
    assert store.classify("orders", {"cool_down": "timer"}) == 0  # once
    store.close()

    again = SQLiteTaskStore(path)  # reopening an upgraded file changes nothing
    assert {t.id: t.kind for t in again.list_tasks(open_only=False)} == kinds
    again.close()
