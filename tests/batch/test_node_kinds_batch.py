"""litestar-workflows' node kinds in batch runs: gateways and groups in worker processes,
webhooks completed from the CLI, timers continued by ``shardflow resume`` when due."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from shardflow import run_batch
from support.e2e import CliRun, by_id, read_results, write_jsonl

FLOWS = str(Path(__file__).parent / "kind_flows.py")


def test_gateways_and_groups_run_in_worker_processes() -> None:
    inputs = [{"id": i, "amount": a} for i, a in enumerate([10, 11, 50, 99])]
    results = {r.id: r for r in run_batch(f"{FLOWS}:routed", inputs, workers=2)}
    assert all(r.status == "completed" for r in results.values()), results
    charged = {i: r.context["charged"] for i, r in results.items()}
    assert charged == {0: "even", 1: "odd", 2: "big", 3: "big"}
    for r in results.values():
        assert r.context["emailed"] and r.context["texted"] and r.context["done"]
    assert results[0].context["trail"] == ["even", "done"]
    assert results[2].context["trail"] == ["review", "charge", "done"]


def test_string_conditions_route_each_instance_in_worker_processes() -> None:
    inputs = [{"id": 0, "approved": True, "order": {"total": 10}},
              {"id": 1, "approved": True, "order": {"total": 5000}},
              {"id": 2, "approved": False, "order": {"total": 10}},
              {"id": 3, "approved": True}]  # None < 1000: this instance fails, the others go on
    results = {r.id: r for r in run_batch(f"{FLOWS}:decided", inputs, workers=2)}
    taken = {0: "publish", 1: "reject", 2: "reject"}
    for i, node in taken.items():
        assert results[i].status == "completed", results[i].error
        assert results[i].context["trail"] == ["review", node, "close"]
    assert results[3].status == "failed"
    assert results[3].error["step"] == "review -> publish"
    assert "'approved and order.total < 1000' raised TypeError" in results[3].error["message"]


def _tasks(cli: CliRun, run_dir: Path, kind: str = "all") -> list[dict[str, Any]]:
    proc = cli("tasks", "list", str(run_dir), "--json", "--kind", kind)
    assert proc.returncode == 0, proc.stderr
    return [orjson.loads(line) for line in proc.stdout.splitlines()]


def test_a_webhook_parks_and_its_callback_from_the_cli_continues_the_run(
        cli: CliRun, tmp_path: Path) -> None:
    out, run_dir = tmp_path / "out.jsonl", tmp_path / "run"
    inp = write_jsonl(tmp_path / "in.jsonl", ({"id": i} for i in range(3)))
    proc = cli("run", f"{FLOWS}:webhooked", "--input", str(inp), "--output", str(out),
               "--workers", "2", "--run-dir", str(run_dir))
    assert proc.returncode == 0, proc.stderr
    assert {r["status"] for r in read_results(out)} == {"waiting"}
    tasks = _tasks(cli, run_dir)
    assert sorted(t["node"] for t in tasks) == ["wait_payment"] * 3
    assert {t["kind"] for t in tasks} == {"webhook"}
    assert _tasks(cli, run_dir, "human") == []  # nobody is asked to act: not in the list
    assert cli("tasks", "list", str(run_dir)).stdout.strip() == "no open human tasks"
    assert len(_tasks(cli, run_dir, "webhook")) == 3
    missing = cli("tasks", "callback", str(run_dir), "0", "ship", "--data", "{}")
    assert missing.returncode == 1 and "no open task at node 'ship'" in missing.stderr
    for task in tasks:  # by task id, or (the caller's view) by instance and node
        paid = orjson.dumps({"paid": int(task["instance_id"])}).decode()
        done = (cli("tasks", "complete", task["id"], "--run-dir", str(run_dir), "--data", paid)
                if task["instance_id"] in (0, "0") else
                cli("tasks", "callback", str(run_dir), str(task["instance_id"]), "wait_payment",
                    "--data", paid))
        assert done.returncode == 0, done.stderr
    resumed = cli("resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr
    final = by_id(read_results(out))
    for i, result in final.items():
        assert result["status"] == "completed"
        assert result["context"]["payment"] == {"paid": i}
        assert result["context"]["shipped"] is True


def test_resume_continues_the_parked_timers_that_are_due_and_only_those(
        cli: CliRun, tmp_path: Path) -> None:
    out, run_dir = tmp_path / "out.jsonl", tmp_path / "run"
    inp = write_jsonl(tmp_path / "in.jsonl", [{"id": 0, "delay": 0}, {"id": 1, "delay": 86400}])
    proc = cli("run", f"{FLOWS}:timed", "--input", str(inp), "--output", str(out),
               "--workers", "1", "--run-dir", str(run_dir), "--wait-timers", "0")
    assert proc.returncode == 75, proc.stderr  # one timer stays parked
    assert "1 timer parked, the next due at" in proc.stderr
    assert "waits for people" not in proc.stderr  # time acts next, not a person
    first = by_id(read_results(out))  # the due one was continued by the run itself
    assert first[0]["status"] == "completed" and first[1]["status"] == "waiting"
    timer_task = _tasks(cli, run_dir, "timer")[0]["id"]
    early = cli("tasks", "complete", timer_task, "--run-dir", str(run_dir), "--data", "{}")
    assert early.returncode == 0, early.stderr  # completed by hand: fires early
    resumed = cli("resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr
    final = by_id(read_results(out))
    assert final[1]["status"] == "completed" and final[1]["context"]["woke"] is True
    assert _tasks(cli, run_dir) == []
