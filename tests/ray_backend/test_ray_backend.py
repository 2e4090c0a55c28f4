"""The Ray backend on a real local Ray (``ray.init(num_cpus=2)``, started once for the module).

Drivers in this process reuse the module's Ray; drivers run as CLI subprocesses join it with
``--address``, so the module pays for one Ray start-up (2.5-9 s)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvloop

ray = pytest.importorskip(
    "ray", reason="the Ray backend's tests need Ray: pip install 'shardflow[ray]'")

from ray_backend.helpers import results_of, started_or_exited  # noqa: E402
from shardflow.batch.config import RunConfig  # noqa: E402
from shardflow.batch.jobs import Job  # noqa: E402
from shardflow.run.executor import BatchExecutor, BatchResult, run_batch  # noqa: E402

FLOWS = str(Path(__file__).parent / "flows.py")


def flow(name: str) -> str:
    return f"{FLOWS}:{name}"


@pytest.fixture(scope="module")
def address() -> Iterator[str]:
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False)
    try:
        yield str(ray.get_runtime_context().gcs_address)
    finally:
        ray.shutdown()


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shardflow", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd, env={**os.environ, **(env or {})},
                          check=False)


def _same_fields(result: BatchResult) -> tuple[Any, ...]:
    return result.id, result.status, result.context, result.error, result.attempts


@pytest.mark.parametrize("example", ["notify", "chord", "race", "approvals"])
def test_seed_examples_give_the_process_backends_results(address: str, example: str) -> None:
    target = f"shardflow.examples.{example}:workflow"
    inputs = [{"id": i, "amount": i * 10} for i in range(40)]
    by_process = run_batch(target, inputs, workers=2)
    by_ray = run_batch(target, inputs, workers=2, backend="ray")
    assert [_same_fields(r) for r in by_ray] == [_same_fields(r) for r in by_process]


@pytest.mark.parametrize("name", ["routed", "decided"])  # decided: string edge conditions
def test_gateways_groups_and_conditions_give_the_process_backends_results(
        address: str, name: str) -> None:
    target = str(Path(__file__).parent.parent / "batch" / "kind_flows.py") + f":{name}"
    inputs = [{"id": i, "amount": i * 7, "approved": i % 3 > 0, "order": {"total": i * 100}}
              for i in range(20)]
    by_process = run_batch(target, inputs, workers=2)
    by_ray = run_batch(target, inputs, workers=2, backend="ray")
    assert {r.status for r in by_ray} == {"completed"}
    assert [_same_fields(r) for r in by_ray] == [_same_fields(r) for r in by_process]


class _CountingExecutor(BatchExecutor):
    """Counts every delivery per submission: a duplicate would be invisible in the futures."""

    delivered: dict[int, int]

    def accept(self, jobs: list[Job], rows: list[list[Any]], lines: list[bytes]) -> None:
        for job in jobs:
            self.delivered[job.seq] = self.delivered.get(job.seq, 0) + 1
        super().accept(jobs, rows, lines)


def test_an_actor_killed_mid_batch_loses_nothing_and_its_jobs_run_again_together(
        address: str, tmp_path: Path) -> None:
    """The actor's process is killed, its node is fine: Ray says the actor died, which is
    no proof against any of its jobs, so they run again in batches (not one at a time, the
    suspects' way, which held a limit-bound run to one instance per actor)."""
    effects, spans = tmp_path / "effects.log", tmp_path / "spans.log"
    os.mkfifo(tmp_path / "held.fifo")

    def held_by() -> int:
        with open(tmp_path / "held.fifo") as fifo:  # instance 5 has started on this actor
            return int(fifo.read())

    async def main() -> tuple[list[BatchResult], dict[int, int], int, list[int]]:
        executor = _CountingExecutor(flow("work"), workers=2, max_in_flight=8, backend="ray")
        executor.delivered = {}
        async with executor as ex:
            futures = [ex.submit({"id": i, "sleep": 0.3, "effects": str(effects), "hold": 5,
                                  "spans": str(spans), "dir": str(tmp_path)}) for i in range(60)]
            victim = await asyncio.to_thread(held_by)  # the pid the actor reported itself
            assert victim in ex.worker_pids()
            os.kill(victim, signal.SIGKILL)
            results = await asyncio.gather(*futures)
            return results, executor.delivered, victim, ex.worker_pids()

    results, delivered, victim, pids_after = uvloop.run(main())
    assert sorted(r.id for r in results) == list(range(60))
    assert all(r.status == "completed" for r in results), [r for r in results if not r.ok]
    assert sorted(delivered) == list(range(60)) and set(delivered.values()) == {1}
    ran = [int(line) for line in effects.read_text().split()]
    lost = {i for i in set(ran) if ran.count(i) == 2}
    assert 5 in lost and len(lost) >= 3, "the lost batch was re-sent"
    assert victim not in pids_after
    reruns = [(int(b), int(e)) for i, b, e in (line.split() for line in spans.read_text()
                                               .splitlines()) if int(i) in lost]
    # each lost job ran (and slept 0.3 s) once more after the kill; together, several overlap
    assert _overlap(reruns) >= 3, "the lost jobs ran again one at a time"


def test_a_job_that_crashes_its_actor_every_time_fails_alone_and_ray_says_so_in_our_format(
        address: str, tmp_path: Path) -> None:
    effects = tmp_path / "effects.log"
    (tmp_path / "in.jsonl").write_bytes(b"".join(orjson.dumps(
        {"id": i, "sleep": 0.05, "poison": 7, "effects": str(effects)}) + b"\n" for i in range(40)))
    done = cli("run", flow("work"), "--input", "in.jsonl", "--backend", "ray", "--address",
               address, "--workers", "2", "--max-in-flight", "8", "--output", "out.jsonl",
               "--no-journal", "--no-progress", cwd=tmp_path)
    assert done.returncode == 1, done.stderr  # one instance failed
    results = results_of(tmp_path / "out.jsonl")
    assert sorted(results) == list(range(40))
    assert results[7]["status"] == "failed" and results[7]["error"]["type"] == "WorkerLost"
    assert [results[i]["status"] for i in range(40) if i != 7] == ["completed"] * 39
    ran = [int(line) for line in effects.read_text().split()]
    assert ran.count(7) == 3, "the poison job crashed three actors, the last one alone"
    # the raylet's notice of each dead worker comes through logging (-v), not raw on
    # stdout (where the results go with --output -) or stderr
    assert not done.stdout.strip(), done.stdout
    raw = [line for line in done.stderr.splitlines()
           if not line.startswith(("shardflow: ", "  ")) and line.strip()]
    assert not raw, done.stderr
    assert done.stderr.count("a shard actor was lost") == 3


def _overlap(spans: list[tuple[int, int]]) -> int:
    """The most of ``spans`` (start, end) open at one time."""
    return _most_at_once([(b, 1) for b, _ in spans] + [(e, -1) for _, e in spans])


def _most_at_once(events: list[tuple[int, int]]) -> int:
    peak = level = 0
    for _, change in sorted(events):
        level += change
        peak = max(peak, level)
    return peak


def _peak(log: Path) -> int:
    return _most_at_once([(int(t), 1 if sign == "+" else -1)
                          for sign, t in (line.split() for line in log.read_text().splitlines())])


def test_a_limit_of_5_holds_across_actors(address: str, tmp_path: Path) -> None:
    log = tmp_path / "api.log"
    inputs = [{"id": i, "log": str(log), "sleep": 0.01} for i in range(80)]
    results = run_batch(flow("limited"), inputs, workers=2, backend="ray", limits={"api": 5})
    assert all(r.status == "completed" for r in results)
    assert _peak(log) == 5  # reached, never exceeded, with calls from both actors


def test_a_killed_actors_limit_slots_are_released(address: str, tmp_path: Path) -> None:
    log = tmp_path / "api.log"
    os.mkfifo(tmp_path / "held.fifo")

    def held_by() -> int:
        with open(tmp_path / "held.fifo") as fifo:  # instance 2 holds the only slot
            return int(fifo.read())

    async def main() -> list[BatchResult]:
        async with BatchExecutor(flow("limited"), workers=2, backend="ray",
                                 limits={"api": 1}) as ex:
            futures = [ex.submit({"id": i, "log": str(log), "sleep": 0.001, "hold": 2,
                                  "dir": str(tmp_path)}) for i in range(20)]
            os.kill(await asyncio.to_thread(held_by), signal.SIGKILL)
            async with asyncio.timeout(60):  # a slot never released would stop the run
                return await asyncio.gather(*futures)

    results = uvloop.run(main())
    assert [r.status for r in results] == ["completed"] * 20
    assert _peak(log) == 1


def test_a_step_blocking_an_actors_loop_is_a_hard_timeout(address: str) -> None:
    config = RunConfig(hard_timeout=1.0, workers=2)
    inputs = [{"id": i, "block": 3} for i in range(10)]
    results = run_batch(flow("blocking"), inputs, config=config, backend="ray")
    assert results[3].status == "failed"
    assert results[3].error is not None and results[3].error["type"] == "HardTimeout"
    assert results[3].error["step"] == "block"
    assert [r.status for i, r in enumerate(results) if i != 3] == ["completed"] * 9


def test_a_parked_human_task_completes_and_resumes_through_ray(address: str,
                                                              tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    out = tmp_path / "out.jsonl"
    started = cli("run", "shardflow.examples.approvals:workflow", "--generate", "2",
                  "--backend", "ray", "--address", address, "--workers", "2", "--output",
                  str(out), "--run-dir", str(run_dir), "--no-progress", cwd=tmp_path)
    assert started.returncode == 0, started.stderr
    assert {r["status"] for r in results_of(out).values()} == {"waiting"}
    listed = cli("tasks", "list", str(run_dir), "--json", cwd=tmp_path)
    tasks = [orjson.loads(line) for line in listed.stdout.splitlines()]
    forms = {"legal_approval": {"approved": True}, "finance_approval": {"approved": True},
             "security_approval": {"approved": True, "risk_level": "low"}}
    mine = [t for t in tasks if t["instance_id"] == "0"]
    assert sorted(t["step"] for t in mine) == sorted(forms)
    for task in mine:
        done = cli("tasks", "complete", task["id"], "--data", orjson.dumps(forms[task["step"]]).decode(),
                   "--run-dir", str(run_dir), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    resumed = cli("resume", str(run_dir), "--no-progress", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    final = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [r["status"] for r in final if r["id"] == 0][-1] == "completed"


def test_resume_finishes_a_ray_run_whose_driver_was_killed(address: str, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    out = tmp_path / "out.jsonl"
    effects = tmp_path / "effects.log"
    os.mkfifo(tmp_path / "held.fifo")
    inputs = tmp_path / "in.jsonl"
    inputs.write_bytes(b"".join(orjson.dumps({"id": i, "effects": str(effects), "hold": 70,
                                              "dir": str(tmp_path), "sleep": 0.005}) + b"\n"
                                for i in range(100)))
    driver = subprocess.Popen(
        [sys.executable, "-m", "shardflow", "run", flow("work"), "--input", str(inputs),
         "--backend", "ray", "--address", address, "--workers", "2", "--max-in-flight", "10",
         "--output", str(out), "--run-dir", str(run_dir), "--no-progress"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        held, said = started_or_exited(tmp_path / "held.fifo", driver)
        assert held, said.decode()
    finally:
        driver.kill()
        driver.communicate()
    before = results_of(out) if out.exists() else {}
    assert 0 < len(before) < 100
    resumed = cli("resume", str(run_dir), "--no-progress", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    after = results_of(out)
    assert sorted(after) == list(range(100))
    assert all(r["status"] == "completed" for r in after.values())
    ran = [int(line) for line in effects.read_text().split()]
    assert all(ran.count(i) == 1 for i in before), "a journalled instance ran again"


def test_a_long_timer_parked_in_a_ray_run_is_fired_by_the_run_and_completes_once(
        address: str, tmp_path: Path) -> None:
    """The run's timer watch beside the Ray pool: a timer due at once is fired while the run
    works, one due in 2 s once the run has nothing else to do (within --wait-timers); each
    instance goes on after its timer exactly once."""
    out, effects, run_dir = tmp_path / "out.jsonl", tmp_path / "effects.log", tmp_path / "run"
    inputs = tmp_path / "in.jsonl"
    inputs.write_bytes(b"".join(orjson.dumps({"id": i, "delay": delay, "effects": str(effects)})
                                + b"\n" for i, delay in enumerate([2, 0])))
    ran = cli("run", flow("timed"), "--input", str(inputs), "--backend", "ray", "--address",
              address, "--workers", "2", "--output", str(out), "--run-dir", str(run_dir),
              "--no-progress", "--wait-timers", "2m", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    final = results_of(out)  # each id once: the waiting lines were replaced
    assert {i: r["status"] for i, r in final.items()} == {0: "completed", 1: "completed"}
    assert sorted(int(line) for line in effects.read_text().split()) == [0, 1]  # once each
    listed = cli("tasks", "list", str(run_dir), "--kind", "timer", "--all", "--json",
                 cwd=tmp_path)
    assert [orjson.loads(line)["completed_by"] for line in listed.stdout.splitlines()] == [
        "<timer>", "<timer>"]


def test_an_embedded_ray_executor_continues_its_due_timers_once(address: str,
                                                             tmp_path: Path) -> None:
    effects = tmp_path / "effects.log"

    async def main() -> tuple[BatchResult, list[BatchResult]]:
        async with BatchExecutor(flow("timed"), backend="ray", address=address, workers=1,
                                 run_dir=tmp_path / "svc") as ex:
            parked = await ex.submit({"id": 0, "delay": 0, "effects": str(effects)})
            return parked, await ex.continue_waiting()

    parked, continued = asyncio.run(main())
    assert parked.status == "waiting" and parked.waiting_until is not None
    assert [(r.id, r.status) for r in continued] == [(0, "completed")]
    assert effects.read_text().split() == ["0"]


SHIPPED_FLOW = '''
import os

from shardflow import BaseMachineStep, WorkflowDefinition

if os.environ.get("ONLY_ON_THE_DRIVER") == "1" and os.environ.get("FAIL_ON_ACTORS") is None:
    raise ImportError("this module is missing on the cluster")


class Mark(BaseMachineStep):
    name = "mark"
    store_result = True

    async def execute(self, context):
        import ray

        return {"cwd": os.getcwd(), "cwd_has_me": os.path.exists("shipped_flow.py"),
                "node": ray.get_runtime_context().get_node_id()}


workflow = WorkflowDefinition(name="shipped", steps={"mark": Mark()}, edges=[],
                              initial_step="mark")
'''


def test_a_relative_file_target_ships_with_the_working_dir(address: str, tmp_path: Path) -> None:
    (tmp_path / "shipped_flow.py").write_text(SHIPPED_FLOW.replace(
        'os.environ.get("ONLY_ON_THE_DRIVER") == "1" and ', "False and "))
    done = cli("run", "shipped_flow.py:workflow", "--generate", "3", "--backend", "ray",
               "--address", address, "--workers", "1", "--output", "out.jsonl",
               "--no-journal", "--no-progress", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    results = results_of(tmp_path / "out.jsonl")
    marks = [results[i]["context"]["mark"] for i in range(3)]
    assert all(m["cwd_has_me"] and m["cwd"] != str(tmp_path) for m in marks), marks  # a copy


def test_a_target_failing_to_import_on_the_actors_is_one_clear_error(address: str,
                                                                       tmp_path: Path) -> None:
    (tmp_path / "shipped_flow.py").write_text(SHIPPED_FLOW.replace(
        ' and os.environ.get("FAIL_ON_ACTORS") is None', "").replace(
        'os.environ.get("ONLY_ON_THE_DRIVER") == "1"', 'os.environ.get("ONLY_ON_THE_DRIVER") != "1"'))
    failed = cli("run", "shipped_flow.py:workflow", "--generate", "3", "--backend", "ray",
                 "--address", address, "--workers", "2", "--output", "out.jsonl",
                 "--run-dir", "run", "--no-progress", cwd=tmp_path,
                 env={"ONLY_ON_THE_DRIVER": "1"})
    assert failed.returncode == 2, failed.stderr
    errors = [line for line in failed.stderr.splitlines() if line.startswith("shardflow: error")]
    assert len(errors) == 1, failed.stderr
    assert "this module is missing on the cluster" in errors[0] and "Ray node" in errors[0]


@pytest.mark.parametrize("how", ["RAY_ADDRESS", "config"])
def test_the_cluster_is_found_by_ray_address_or_the_config(address: str, tmp_path: Path,
                                                           how: str) -> None:
    (tmp_path / "shipped_flow.py").write_text(SHIPPED_FLOW.replace(
        'os.environ.get("ONLY_ON_THE_DRIVER") == "1" and ', "False and "))
    (tmp_path / "shardflow.toml").write_text(
        f'[run]\nbackend = "ray"\nworkers = 1\n[ray]\naddress = "{address}"\nbatch_size = 2\n')
    args = ["--backend", "ray"] if how == "RAY_ADDRESS" else ["--config", "shardflow.toml"]
    done = cli("run", "shipped_flow.py:workflow", "--generate", "5", *args, "--output",
               "out.jsonl", "--no-journal", "--no-progress", cwd=tmp_path,
               env={"RAY_ADDRESS": address} if how == "RAY_ADDRESS" else None)
    assert done.returncode == 0, done.stderr
    nodes = {r["context"]["mark"]["node"] for r in results_of(tmp_path / "out.jsonl").values()}
    assert nodes == {ray.get_runtime_context().get_node_id()}  # this module's Ray, joined


def test_bench_compares_ray_with_the_process_backend_in_one_run(address: str) -> None:
    from shardflow.bench.runner import run_bench

    report = run_bench("limit50", 300, 2, 100, baseline=True, backend="ray")
    assert report["completed"] == 300 and report["backend"] == "ray"
    assert report["vs_process"] > 0 and report["process_instances_per_second"] > 0
    assert report["limits"]["api"]["size"] == 50 and report["limits"]["api"]["peak"] == 50
    assert report["limit_efficiency"] > 0 and report["process_limit_efficiency"] > 0


SHIPPED_DIR_FLOW = '''
import os

from shardflow import BaseMachineStep, WorkflowDefinition


class Look(BaseMachineStep):
    name = "look"
    store_result = True

    async def execute(self, context):
        import shardflow

        shipped = sorted(os.path.join(d, f)[2:] for d, _, fs in os.walk(".") for f in fs)
        return {"shipped": shipped, "greeting": os.environ.get("GREETING"),
                "token": os.environ.get("SHARDFLOW_TEST_TOKEN"), "shardflow": shardflow.__file__}


workflow = WorkflowDefinition(name="look", steps={"look": Look()}, edges=[], initial_step="look")
'''


def test_a_shipped_working_dir_holds_code_only_and_the_actors_get_the_env_and_shardflow(
        address: str, tmp_path: Path) -> None:
    code = tmp_path / "code"
    (code / "runs").mkdir(parents=True)
    (code / "flows.py").write_text(SHIPPED_DIR_FLOW)
    (code / "notes.tmp").write_text("scratch")
    (code / ".gitignore").write_text("*.tmp\n")
    (code / "fixtures.jsonl").write_text("{}\n")
    inputs = code / "in.jsonl"  # the run's own input, inside the shipped directory
    inputs.write_text("".join(f'{{"id": {i}}}\n' for i in range(3)))
    done = cli("run", "code/flows.py:workflow", "--input", str(inputs), "--backend", "ray",
               "--address", address, "--workers", "1", "--ray-working-dir", "code",
               "--ray-exclude", "*.jsonl", "--ray-env", "GREETING=hello", "--ray-env",
               "SHARDFLOW_TEST_TOKEN", "--ray-ship-shardflow", "--output", "code/out.jsonl",
               "--run-dir", "code/runs/now", "--no-progress", cwd=tmp_path,
               env={"SHARDFLOW_TEST_TOKEN": "from-the-driver"})
    assert done.returncode == 0, done.stderr
    looked = results_of(code / "out.jsonl")[0]["context"]["look"]
    assert looked["shipped"] == [".gitignore", "flows.py"]
    assert looked["greeting"] == "hello" and looked["token"] == "from-the-driver"
    assert f"shipping {code}" in done.stderr and "2 files" in done.stderr
    import shardflow

    assert Path(looked["shardflow"]).parent != Path(shardflow.__file__).parent  # the shipped copy


@pytest.mark.parametrize(("planted", "problem"), [
    ("shardflow-0.0.1.dist-info/METADATA", "has shardflow 0.0.1"),  # another version
    ("shardflow/__init__.py", "cannot import shardflow"),  # none that imports
])
def test_a_node_whose_actors_import_another_shardflow_is_named_in_one_line(
        address: str, tmp_path: Path, planted: str, problem: str) -> None:
    """What the actors import is decided on the node (here by the ``PYTHONPATH`` they get):
    the run stops before any actor starts, naming the node."""
    other = tmp_path / "other"
    (other / planted).parent.mkdir(parents=True)
    (other / planted).write_text("Metadata-Version: 2.1\nName: shardflow\nVersion: 0.0.1\n"
                                 if planted.endswith("METADATA") else
                                 'raise ImportError("not the driver\'s shardflow")\n')
    failed = cli("run", "shardflow.examples.notify:workflow", "--generate", "3", "--backend",
                 "ray", "--address", address, "--workers", "1", "--ray-env",
                 f"PYTHONPATH={other}", "--output", "out.jsonl", "--no-journal",
                 "--no-progress", cwd=tmp_path)
    assert failed.returncode == 2, failed.stderr
    [error] = [line for line in failed.stderr.splitlines() if line.startswith("shardflow: error")]
    node = ray.get_runtime_context().get_node_id()[:12]
    assert f"(node {node}): {problem}" in error, error
    assert not (tmp_path / "out.jsonl").exists() or not (tmp_path / "out.jsonl").read_text()


def test_ray_actors_deliver_the_same_events_as_worker_processes(address: str) -> None:
    from shardflow.events import EventBus, WorkflowEvent

    target = f"{Path(__file__).parent.parent / 'run' / 'event_flows.py'}:workflow"
    inputs = [{"id": "waits", "value": 1}, {"id": 7, "value": -1}, {"id": "skips", "skip": True}]

    def events_of(backend: str) -> dict[Any, list[tuple[str, Any]]]:
        bus = EventBus()
        seen: dict[Any, list[tuple[str, Any]]] = {}

        def note(event: WorkflowEvent) -> None:
            seen.setdefault(event.instance_id, []).append(
                (event.event_type, getattr(event, "step_name", None)))

        bus.subscribe(note)

        async def main() -> None:
            async with BatchExecutor(target, workers=2, backend=backend, event_bus=bus) as ex:
                await asyncio.gather(*(ex.submit(d) for d in inputs))

        asyncio.run(main())
        return seen

    by_process = events_of("process")
    assert set(by_process) == {"waits", 7, "skips"}
    assert events_of("ray") == by_process


def test_ray_actors_keep_the_step_history_of_definitions_that_read_it(address: str) -> None:
    target = f"{Path(__file__).parent.parent / 'run' / 'history_flows.py'}:compiled"
    results = run_batch(target, [{"id": i} for i in range(20)], workers=2, backend="ray")
    assert {r.status for r in results} == {"completed"}
    assert all(r.context["seen"] == [["first", "succeeded", "one"], ["flaky", "failed", None],
                                     ["flaky", "succeeded", None]] for r in results)


def test_rays_log_records_keep_going_through_shardflow_after_ray_init_clears_its_handlers(
        address: str, caplog: pytest.LogCaptureFixture) -> None:
    from shardflow.backends.ray.ray_logging import route_ray_loggers

    route_ray_loggers()
    caplog.set_level(logging.DEBUG, logger="shardflow")  # Ray's notices come at DEBUG
    # clears the ``ray`` logger's handlers first, then logs that Ray is up already
    ray.init(address=address, ignore_reinit_error=True, configure_logging=False)
    # handled by shardflow.ray's handlers (caplog's sits above them), under Ray's own name
    assert any("ray.init() again" in r.getMessage() for r in caplog.records), caplog.records
