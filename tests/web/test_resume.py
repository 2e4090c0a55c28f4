"""Resuming runs from the API: real ``shardflow resume`` processes, their state and errors."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from shardflow.web.resumer import Resumer, resume_command
from web.inbox_helpers import approvals_run, env, needs_web, output_records

pytestmark = needs_web

APPROVE = {"legal_approval": {"approved": True, "concerns": "none"},
           "finance_approval": {"approved": True, "budget_code": "B-7"},
           "security_approval": {"approved": True, "risk_level": "low"}}


def _complete_instance(api: Any, instance: str) -> list[dict[str, Any]]:
    tasks = [t for t in api.get("/api/tasks?run=run").json()["tasks"]
             if str(t["instance_id"]) == instance]
    replies = []
    for task in tasks:
        response = api.post(f"/api/runs/run/tasks/{task['id']}/complete", json=APPROVE[task["step"]])
        assert response.status_code == 200, response.text
        replies.append(response.json())
    return replies


def _with_env(monkeypatch: Any) -> None:
    """Resume children find this worktree's sources."""
    monkeypatch.setenv("PYTHONPATH", env()["PYTHONPATH"])


def test_a_run_is_resumed_from_the_api(tmp_path: Path, serve: Any, monkeypatch: Any) -> None:
    _with_env(monkeypatch)
    monkeypatch.chdir(tmp_path)
    run_dir, output = approvals_run(tmp_path)
    api = serve([run_dir])
    state = api.get("/api/runs/run").json()
    assert (state["open_tasks"], state["waiting_instances"], state["ready_instances"]) == (9, 3, 0)
    assert state["resume"]["status"] == "idle"
    replies = _complete_instance(api, "1")
    assert [r["instance_ready"] for r in replies] == [False, False, True]
    assert replies[-1]["resume"] is None  # no auto-resume
    assert api.get("/api/runs/run").json()["ready_instances"] == 1

    started = api.post("/api/runs/run/resume")
    assert started.status_code == 202
    assert started.json()["resume"]["status"] == "running"
    done = api.get("/api/runs/run?wait=60").json()
    assert done["resume"]["status"] == "succeeded", done["resume"]["output"]
    assert (done["resume"]["exit_code"], done["ready_instances"], done["waiting_instances"]) == (0, 0, 2)
    final = [r for r in output_records(output) if r["id"] == 1 and r["status"] == "completed"]
    assert len(final) == 1
    context = final[0]["context"]
    assert context["security_approval"] == APPROVE["security_approval"]
    assert context["all_approved"] is True


def test_auto_resume_starts_when_an_instance_is_ready(tmp_path: Path, serve: Any,
                                                      monkeypatch: Any) -> None:
    _with_env(monkeypatch)
    monkeypatch.chdir(tmp_path)
    run_dir, output = approvals_run(tmp_path)
    api = serve([run_dir], auto_resume=True)
    replies = _complete_instance(api, "0")
    assert [r["resume"] is not None for r in replies] == [False, False, True]
    assert replies[-1]["resume"]["status"] == "running"
    done = api.get("/api/runs/run?wait=60").json()
    assert done["resume"]["status"] == "succeeded", done["resume"]["output"]
    assert [r["status"] for r in output_records(output) if r["id"] == 0][-1] == "completed"


def test_a_failing_resume_shows_its_error_line(tmp_path: Path, serve: Any,
                                               monkeypatch: Any) -> None:
    _with_env(monkeypatch)
    run_dir, _ = approvals_run(tmp_path)
    (run_dir / "run.json").unlink()
    api = serve([run_dir])
    assert api.post("/api/runs/run/resume").status_code == 202
    resume = api.get("/api/runs/run?wait=60").json()["resume"]
    assert (resume["status"], resume["exit_code"]) == ("failed", 2)
    assert resume["message"].startswith("shardflow: error:")
    assert "not a shardflow run directory" in resume["message"]


def _blocked_until(*fifos: Path) -> Resumer:
    """A resumer whose n-th 'resume' waits until the test writes to the n-th FIFO."""
    for fifo in fifos:
        os.mkfifo(fifo)
    waits = iter(fifos)
    return Resumer(lambda run_dir: [sys.executable, "-c", f"open({str(next(waits))!r}).read()"])


def _release(fifo: Path) -> None:
    with open(fifo, "w") as end:
        end.write("go")


def test_a_second_resume_while_one_runs_gets_409(tmp_path: Path, serve: Any) -> None:
    run_dir, _ = approvals_run(tmp_path)
    fifo = tmp_path / "release"
    api = serve([run_dir], resumer=_blocked_until(fifo))
    assert api.post("/api/runs/run/resume").status_code == 202
    again = api.post("/api/runs/run/resume")
    assert again.status_code == 409
    assert "already running" in again.json()["detail"]
    assert api.get("/api/runs/run?wait=0.2").json()["resume"]["status"] == "running"
    _release(fifo)
    assert api.get("/api/runs/run?wait=60").json()["resume"]["status"] == "succeeded"


def test_auto_resume_during_a_resume_queues_one_more(tmp_path: Path, serve: Any) -> None:
    run_dir, _ = approvals_run(tmp_path)
    first, second = tmp_path / "first", tmp_path / "second"
    api = serve([run_dir], auto_resume=True, resumer=_blocked_until(first, second))
    _complete_instance(api, "0")
    queued = _complete_instance(api, "1")[-1]["resume"]
    assert (queued["status"], queued["queued"]) == ("running", True)
    first_pid = queued["pid"]
    _release(first)  # the first ends, the queued one starts
    _release(second)  # opening blocks until the queued one reads
    final = api.get("/api/runs/run?wait=60").json()["resume"]
    assert (final["status"], final["queued"]) == ("succeeded", False)
    assert final["pid"] != first_pid


def test_the_resume_command_is_the_cli() -> None:
    assert resume_command(Path("/r")) == [sys.executable, "-m", "shardflow", "resume", "/r",
                                          "--no-progress", "--wait-timers", "0"]
