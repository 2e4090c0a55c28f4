"""What the approver sees, through the API: the step's description and ``display`` fields with
the instance's values, a one-line summary per task, the schema; a completed task keeps what
was submitted. A real batch run makes the tasks."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from shardflow.model.tasks import HumanTask
from shardflow.store.tasks import SQLiteTaskStore
from web.inbox_helpers import env, needs_web

pytestmark = needs_web

ORDERS = f"{Path(__file__).parent / 'order_flows.py'}:workflow"


def order_run(base: Path, customers: list[str]) -> Path:
    """A batch run of the order approval: one waiting instance per customer."""
    orders = base / "orders.jsonl"
    orders.write_bytes(b"".join(orjson.dumps(
        {"id": i, "order": {"customer": c, "total": 100 * (i + 1), "lines": [{"sku": "A"}]}})
        + b"\n" for i, c in enumerate(customers)))
    run_dir = base / "orders"
    subprocess.run([sys.executable, "-m", "shardflow", "run", ORDERS, "--input", str(orders),
                    "--run-dir", str(run_dir), "--output", str(base / "out.jsonl"),
                    "--no-progress", "--workers", "1"],
                   cwd=base, env=env(), check=True, capture_output=True, timeout=60)
    return run_dir


def test_the_approver_sees_what_the_step_chose_to_show(tmp_path: Path, serve: Any) -> None:
    api = serve([order_run(tmp_path, ["ACME", "Globex <b>"])])
    listed = api.get("/api/tasks").json()["tasks"]
    assert sorted(t["summary"] for t in listed) == [
        'Approve order: Customer ACME, Amount 100, Lines [{"sku":"A"}]',
        'Approve order: Customer Globex <b>, Amount 200, Lines [{"sku":"A"}]']
    task = next(t for t in listed if "ACME" in t["summary"])
    shown = api.get(f"/api/runs/orders/tasks/{task['id']}").json()
    assert shown["description"] == "Orders above the automatic limit need a person's approval."
    assert shown["display"] == [
        {"label": "Customer", "path": "order.customer", "value": "ACME"},
        {"label": "Amount", "path": "order.total", "value": 100},
        {"label": "Lines", "path": "order.lines", "value": [{"sku": "A"}]},
        {"label": "Discount", "path": "order.discount", "value": None, "missing": True}]
    assert shown["context"] == {"Customer": "ACME", "Amount": 100, "Lines": [{"sku": "A"}]}
    assert shown["form_schema"]["title"] == "Your decision"
    by_id = api.get(f"/api/tasks/{task['id']}").json()  # for front ends without the run name
    assert by_id == shown
    assert api.get("/api/tasks/no-such-task").status_code == 404

    done = api.post(f"/api/runs/orders/tasks/{task['id']}/complete",
                    json={"approved": False, "comment": "over budget"})
    assert done.status_code == 200, done.text
    again = api.get(f"/api/tasks/{task['id']}").json()
    assert again["data"] == {"approved": False, "comment": "over budget"}
    assert again["completed_by"] == "ann" and again["display"] == shown["display"]


def test_a_display_that_is_not_labels_to_paths_is_a_definition_error() -> None:
    from shardflow import BaseHumanStep, WorkflowDefinition

    class Bad(BaseHumanStep):
        display = {"Amount": 3}  # type: ignore[dict-item]

    definition = WorkflowDefinition(name="bad", steps={"a": Bad()}, edges=[], initial_step="a",
                                    terminal_steps={"a"})
    assert [p.kind for p in definition.validate()] == ["bad_display"]


def test_a_form_schema_may_refer_only_inside_itself() -> None:
    """A remote $ref would be fetched on every validation: refused when the workflow loads."""
    from shardflow import BaseHumanStep, WorkflowDefinition

    class Remote(BaseHumanStep):
        form_schema = {"type": "object", "$defs": {"ok": {"type": "boolean"}},
                       "properties": {"a": {"$ref": "http://127.0.0.1:9/s.json"},
                                      "b": {"$ref": "#/$defs/ok"}}}

    definition = WorkflowDefinition(name="r", steps={"a": Remote()}, edges=[], initial_step="a",
                                    terminal_steps={"a"})
    [problem] = definition.validate()
    assert problem.kind == "remote_ref" and "'http://127.0.0.1:9/s.json'" in str(problem)


def test_a_tasks_db_of_an_earlier_version_gains_the_new_columns(tmp_path: Path) -> None:
    """Runs made before tasks recorded what to show still open, and show nothing extra."""
    path = tmp_path / "tasks.db"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE instances (instance_id TEXT PRIMARY KEY, workflow TEXT NOT NULL,
            version TEXT NOT NULL, seq INTEGER NOT NULL, state BLOB NOT NULL,
            status TEXT NOT NULL, updated_at REAL NOT NULL, input_id BLOB);
        CREATE TABLE tasks (id TEXT PRIMARY KEY, instance_id TEXT NOT NULL, node TEXT NOT NULL,
            step TEXT NOT NULL, title TEXT NOT NULL, form_schema BLOB, assignee TEXT,
            due_at REAL, created_at REAL NOT NULL, completed_at REAL, completed_by TEXT,
            data BLOB);
        INSERT INTO tasks VALUES ('t1', '1', 'n', 's', 'Old task', NULL, NULL, NULL, 5.0,
            NULL, NULL, NULL);
    """)
    db.close()
    store = SQLiteTaskStore(path)
    try:
        old = store.get_task("t1")
        assert (old.title, old.description, old.display) == ("Old task", None, None)
        store.save_waiting([])
    finally:
        store.close()
    assert HumanTask.from_dict({**old.to_dict(), "display": [{"label": "A"}]}).display == \
        [{"label": "A"}]
