"""A webhook's callback delivered through the inbox API: the external system finds the task
by run and node, completes it, and the run's resume continues the instance."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from web.inbox_helpers import env, needs_web, output_records

pytestmark = needs_web

WEBHOOKED = str(Path(__file__).parent.parent / "batch" / "kind_flows.py") + ":webhooked"


def test_a_webhook_is_completed_through_the_api_and_the_run_resumes(
        tmp_path: Path, serve: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("PYTHONPATH", env()["PYTHONPATH"])
    monkeypatch.chdir(tmp_path)
    output = tmp_path / "out.jsonl"
    subprocess.run([sys.executable, "-m", "shardflow", "run", WEBHOOKED, "--generate", "2",
                    "--run-dir", str(tmp_path / "run"), "--output", str(output),
                    "--no-progress", "--workers", "1"],
                   cwd=tmp_path, env=env(), check=True, capture_output=True, timeout=60)
    api = serve([tmp_path / "run"])
    assert api.get("/api/tasks?run=run").json()["total"] == 0  # the inbox is for people
    assert api.get("/api/inbox").json()["runs"][0]["open"] == 0
    assert api.get("/api/tasks?kind=robot").status_code == 400
    state = api.get("/api/runs/run").json()
    assert (state["open_tasks"], state["open_webhooks"]) == (0, 2)
    tasks = api.get("/api/tasks?run=run&node=wait_payment&kind=webhook").json()["tasks"]
    assert len(tasks) == 2 and {t["kind"] for t in tasks} == {"webhook"}
    for task in tasks:
        reply = api.post(f"/api/runs/run/tasks/{task['id']}/complete",
                         json={"paid": str(task["instance_id"])})
        assert reply.status_code == 200, reply.text
        assert reply.json()["instance_ready"] is True
    assert api.post("/api/runs/run/resume").status_code == 202
    done = api.get("/api/runs/run?wait=60").json()
    assert done["resume"]["status"] == "succeeded", done["resume"]["output"]
    final = {r["id"]: r for r in output_records(output) if r["status"] == "completed"}
    assert sorted(final) == [0, 1]
    for i, record in final.items():
        assert record["context"]["payment"] == {"paid": str(i)}
        assert record["context"]["shipped"] is True



TIMED = str(Path(__file__).parent.parent / "batch" / "kind_flows.py") + ":timed"


def test_the_inbox_resume_leaves_a_later_timer_parked_without_waiting_and_succeeds(
        tmp_path: Path, serve: Any, monkeypatch: Any) -> None:
    """A timer due in 200 s, within the CLI's default --wait-timers: a resume from the inbox
    must not sit on it (the API's wait of 60 s would see it still running)."""
    monkeypatch.setenv("PYTHONPATH", env()["PYTHONPATH"])
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.jsonl").write_text('{"id": 0, "delay": 200}\n')
    ran = subprocess.run([sys.executable, "-m", "shardflow", "run", TIMED, "-i", "in.jsonl",
                          "--run-dir", str(tmp_path / "run"), "--output", str(tmp_path / "o"),
                          "--no-progress", "--workers", "1", "--wait-timers", "0"],
                         cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=60)
    assert ran.returncode == 75, ran.stderr
    api = serve([tmp_path / "run"])
    state = api.get("/api/runs/run").json()
    assert (state["open_tasks"], state["open_timers"]) == (0, 1)
    assert state["next_timer_due"] > 0
    assert api.post("/api/runs/run/resume").status_code == 202
    done = api.get("/api/runs/run?wait=60").json()["resume"]
    assert (done["status"], done["exit_code"]) == ("succeeded", 75), done
