"""``LocalExecutionEngine`` lists tasks for people as ``shardflow tasks list`` and the inbox do:
human tasks unless asked for timers or webhooks (``kind=``), also from a task store written
before tasks had kinds, whose rows it classifies from its workflows as ``resume`` does."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from engine.helpers import engine_for, within, writer
from shardflow import (
    BaseHumanStep,
    Edge,
    FakeClock,
    SQLiteTaskStore,
    TimerStep,
    WebhookStep,
    WorkflowDefinition,
    WorkflowStatus,
)
from shardflow.model.tasks import UnknownTaskKindError

OLD_DB = Path(__file__).parents[1] / "store" / "data" / "tasks-before-kinds.db"
"""Workflow ``orders`` 1.0.0 before kinds: t1 at human ``approve`` (completed), t2 at timer
``cool_down`` (open), t3 at webhook ``wait_payment`` (open); see tests/store."""


def _kinds() -> WorkflowDefinition:
    """Where the instance goes is its input's ``to``: a person, a long timer, a webhook."""
    return WorkflowDefinition(
        name="kinds",
        steps={"start": writer("start", started=True),
               "review": BaseHumanStep("review", "Review"),
               "cool_down": TimerStep("cool_down", duration=timedelta(hours=2)),
               "wait_payment": WebhookStep("wait_payment"),
               "done": writer("done", done=True)},
        edges=[Edge("start", "review", lambda c: c.get("to") == "human"),
               Edge("start", "cool_down", lambda c: c.get("to") == "timer"),
               Edge("start", "wait_payment", lambda c: c.get("to") == "webhook"),
               Edge("review", "done"), Edge("cool_down", "done"), Edge("wait_payment", "done")],
        initial_step="start")


def _orders() -> WorkflowDefinition:
    """The workflow the old task store was written by (its nodes, its version)."""
    return WorkflowDefinition(
        name="orders", version="1.0.0",
        steps={"approve": BaseHumanStep("approve", "Approve"),
               "cool_down": TimerStep("cool_down", duration=timedelta(days=1)),
               "wait_payment": WebhookStep("wait_payment"),
               "ship": writer("ship", shipped=True)},
        edges=[Edge("approve", "cool_down"), Edge("cool_down", "wait_payment"),
               Edge("wait_payment", "ship")],
        initial_step="approve")


@pytest.mark.parametrize("stored", [False, True], ids=["in-memory", "task-store"])
def test_pending_tasks_are_for_people_unless_another_kind_is_asked_for(
        run: Any, tmp_path: Path, stored: bool) -> None:
    async def main() -> None:
        options: dict[str, Any] = {"clock": FakeClock()}
        if stored:
            options["store"] = SQLiteTaskStore(tmp_path / "tasks.db")
        engine = engine_for(_kinds(), **options)
        ids = {to: (await within(engine.start_workflow("kinds", {"to": to}))).id
               for to in ("human", "timer", "webhook")}
        assert [t.instance_id for t in engine.pending_tasks()] == [ids["human"]]
        assert [t.instance_id for t in engine.pending_tasks(kind="timer")] == [ids["timer"]]
        assert [t.kind for t in engine.pending_tasks(ids["webhook"], kind="webhook")] == ["webhook"]
        assert engine.pending_tasks(ids["timer"]) == []  # it waits for time, not a person
        assert {t.kind for t in engine.pending_tasks(kind=("timer", "webhook"))} == {
            "timer", "webhook"}
        assert len(engine.pending_tasks(kind="all")) == 3
        with pytest.raises(UnknownTaskKindError, match="'robot'"):
            engine.pending_tasks(kind="robot")
        # a webhook is still completed through the engine, by its node
        done = await within(engine.complete_webhook(ids["webhook"], "wait_payment", {"ok": 1}))
        assert done.status == WorkflowStatus.COMPLETED
    run(main())


def test_an_old_task_store_is_classified_by_the_engine_s_workflows(
        run: Any, tmp_path: Path) -> None:
    path = tmp_path / "tasks.db"
    shutil.copy(OLD_DB, path)

    async def main() -> None:
        engine = engine_for(_orders(), store=SQLiteTaskStore(path))
        assert engine.pending_tasks() == []  # t2 is a timer, t3 a webhook: nobody's to do
        assert [t.id for t in engine.pending_tasks(kind="timer")] == ["t2"]
        assert [t.id for t in engine.pending_tasks(kind="webhook")] == ["t3"]
    run(main())
    with sqlite3.connect(path) as db:  # classified in the store, as 'resume' leaves it
        assert dict(db.execute("SELECT id, kind FROM tasks").fetchall()) == {
            "t1": "human", "t2": "timer", "t3": "webhook"}


def test_old_rows_of_a_workflow_the_engine_does_not_know_stay_as_they_were(
        run: Any, tmp_path: Path) -> None:
    path = tmp_path / "tasks.db"
    shutil.copy(OLD_DB, path)

    async def main() -> None:
        engine = engine_for(_kinds(), store=SQLiteTaskStore(path))
        assert [t.id for t in engine.pending_tasks()] == ["t2", "t3"]  # what old code showed
    run(main())
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM tasks WHERE kind IS NULL").fetchone() == (3,)
