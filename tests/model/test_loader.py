"""Finding a workflow like uvicorn and celery do: the current directory (or ``--app-dir``) first
on the import path, in the coordinator and in every worker; and refusing a script whose
import-time code would run again in every worker.

The CLI runs through the installed ``shardflow`` entry point, whose own directory (not the
current one) heads ``sys.path``: the case ``python -m shardflow`` hides.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import orjson
import pytest

import shardflow
from shardflow.errors import WorkflowLoadError
from shardflow.model.loader import load_workflow, reference_of

SRC = str(Path(shardflow.__file__).resolve().parents[1])
ENTRY_POINT = Path(sys.executable).with_name("shardflow")
GUARD_ADVICE = 'if __name__ == "__main__":'

# A workflow module that leaves a marker per process importing it, and whose step reports the
# file it was imported from.
ORDERS = """\
import os
from pathlib import Path

from shardflow import BaseMachineStep, WorkflowDefinition

Path(os.environ["MARKERS"], f"{os.getpid()}-{__name__}").touch()


class Ship(BaseMachineStep):
    name = "ship"
    store_result = True  # the output shows which file ran

    async def execute(self, context):
        return {"file": __file__}


workflow = WorkflowDefinition(name="orders", steps={"ship": Ship()}, edges=[],
                              initial_step="ship", terminal_steps={"ship"})
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def env(markers: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": SRC, "MARKERS": str(markers)}


def shardflow_cli(cwd: Path, markers: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if not ENTRY_POINT.exists():
        pytest.skip(f"no installed 'shardflow' entry point next to {sys.executable}")
    return subprocess.run([str(ENTRY_POINT), *args], cwd=cwd, env=env(markers), capture_output=True,
                          text=True, timeout=120, check=False)


def importers(markers: Path, module: str) -> set[str]:
    """Process ids that imported ``module``."""
    return {p.name.partition("-")[0] for p in markers.iterdir() if p.name.endswith(f"-{module}")}


@pytest.fixture
def markers(tmp_path: Path) -> Path:
    path = tmp_path / "markers"
    path.mkdir()
    return path


def run_args(out: Path, *extra: str) -> tuple[str, ...]:
    return ("run", "orders:workflow", "--generate", "40", "--workers", "2", "--no-progress",
            "--output", str(out), "--run-dir", str(out.with_suffix(".run")), *extra)


def shipped_from(out: Path) -> set[str]:
    results = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert len(results) == 40 and {r["status"] for r in results} == {"completed"}
    return {r["context"]["ship"]["file"] for r in results}


def test_targets_are_found_in_the_current_directory_by_coordinator_and_workers(
        tmp_path: Path, markers: Path) -> None:
    project = tmp_path / "myproject"
    write(project / "orders.py", ORDERS)
    validate = shardflow_cli(project, markers, "validate", "orders:workflow")
    assert validate.returncode == 0, validate.stderr
    assert "orders 1.0.0: valid" in validate.stdout
    graph = shardflow_cli(project, markers, "graph", "orders:workflow")
    assert graph.returncode == 0 and 'ship["ship"]' in graph.stdout, graph.stderr
    for marker in markers.iterdir():
        marker.unlink()
    run = shardflow_cli(project, markers, *run_args(tmp_path / "out.jsonl"))
    assert run.returncode == 0, run.stderr
    assert shipped_from(tmp_path / "out.jsonl") == {str(project / "orders.py")}
    assert len(importers(markers, "orders")) == 3  # the coordinator and both workers


def test_app_dir_chooses_the_directory_targets_are_imported_from(tmp_path: Path, markers: Path) -> None:
    project = tmp_path / "myproject"
    write(project / "src" / "orders.py", ORDERS)
    write(project / "orders.py", "raise RuntimeError('the wrong orders module')\n")
    validate = shardflow_cli(project, markers, "validate", "--app-dir", "src", "orders:workflow")
    assert validate.returncode == 0, validate.stderr
    graph = shardflow_cli(project, markers, "graph", "--app-dir", "src", "--format", "dot",
                          "orders:workflow")
    assert graph.returncode == 0 and '"ship" [label="ship"' in graph.stdout, graph.stderr
    run = shardflow_cli(project, markers, *run_args(tmp_path / "out.jsonl", "--app-dir", "src"))
    assert run.returncode == 0, run.stderr
    assert shipped_from(tmp_path / "out.jsonl") == {str(project / "src" / "orders.py")}
    default = shardflow_cli(project, markers, "validate", "orders:workflow")  # cwd: the decoy
    assert default.returncode == 2 and "the wrong orders module" in default.stderr
    missing = shardflow_cli(project, markers, "validate", "--app-dir", "nope", "orders:workflow")
    assert missing.returncode == 2 and "'nope' does not exist" in missing.stderr


def test_a_module_that_is_not_found_says_where_it_was_looked_for(tmp_path: Path, markers: Path) -> None:
    proc = shardflow_cli(tmp_path, markers, "validate", "orders:workflow")
    assert proc.returncode == 2
    assert "cannot load workflow 'orders:workflow': no module named 'orders'" in proc.stderr
    assert str(tmp_path) in proc.stderr and "--app-dir" in proc.stderr


# -- scripts whose import-time code would run in every worker ---------------------------------
SCRIPT = """\
    import os
    from pathlib import Path

    from shardflow import BaseMachineStep, WorkflowDefinition
    from shardflow import run_batch

    Path(os.environ["MARKERS"], f"{os.getpid()}-{__name__}").touch()


    class Ship(BaseMachineStep):
        name = "ship"

        async def execute(self, context):
            return 1


    workflow = WorkflowDefinition(name="s", steps={"ship": Ship()}, edges=[], initial_step="ship",
                                  terminal_steps={"ship"})
"""


def run_script(path: Path, markers: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(path)], cwd=path.parent, env=env(markers),
                          capture_output=True, text=True, timeout=120, check=False)


def test_a_script_starting_a_batch_of_its_own_workflow_without_a_guard_is_refused(
        tmp_path: Path, markers: Path) -> None:
    script = write(tmp_path / "myscript.py", SCRIPT + """\
    results = run_batch(workflow, [{"id": 1}], workers=2)
    print([r.status for r in results])
    """)
    proc = run_script(script, markers)
    assert proc.returncode == 1
    assert (f"WorkflowLoadError: cannot load workflow '{script}:workflow': {script} line 19 "
            "calls run_batch() when the file is imported") in proc.stderr
    assert GUARD_ADVICE in proc.stderr and "move the workflow into a module" in proc.stderr
    assert len(list(markers.iterdir())) == 1  # no worker ever imported the script


def test_a_guarded_script_runs_its_batch_and_workers_import_it_without_running_it(
        tmp_path: Path, markers: Path) -> None:
    script = write(tmp_path / "myscript.py", SCRIPT + """\
    from shardflow import BatchExecutor

    idle = BatchExecutor(workflow)  # made at import, never started: harmless in a worker

    if __name__ == "__main__":
        results = run_batch(workflow, [{"id": 1}, {"id": 2}], workers=2)
        print(sorted(r.status for r in results))
    """)
    proc = run_script(script, markers)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "['completed', 'completed']\n"
    imported_as = sorted(p.name.partition("-")[2] for p in markers.iterdir())
    assert imported_as[0] == "__main__"  # the script itself, then each worker imports it by path
    assert len(imported_as) == 3 and all(n.startswith("shardflow_user_") for n in imported_as[1:])


def test_a_script_target_that_runs_its_entry_point_at_import_is_refused_before_running_it(
        tmp_path: Path, markers: Path) -> None:
    write(tmp_path / "myscript.py", SCRIPT + """\
    def main():
        Path(os.environ["MARKERS"], "main-ran").touch()


    try:
        main()
    finally:
        pass
    """)
    for command in (("validate",), ("run", "--generate", "3", "--workers", "2", "--no-journal")):
        proc = shardflow_cli(tmp_path, markers, command[0], "myscript.py:workflow", *command[1:])
        assert proc.returncode == 2, proc.stderr
        assert (f"cannot load workflow 'myscript.py:workflow': {tmp_path / 'myscript.py'} line 24 "
                "calls main() when the file is imported") in proc.stderr
        assert GUARD_ADVICE in proc.stderr
    assert list(markers.iterdir()) == []  # refused before the file ran at all


def test_a_module_target_starting_a_batch_when_imported_is_refused_before_it_runs(
        tmp_path: Path, markers: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "starts_batch_on_import.py", SCRIPT + """\
    results = run_batch(workflow, [{"id": 1}])
    """)
    monkeypatch.setenv("MARKERS", str(markers))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "starts_batch_on_import", raising=False)
    with pytest.raises(WorkflowLoadError) as caught:
        load_workflow("starts_batch_on_import:workflow")
    assert caught.value.target == "starts_batch_on_import:workflow"
    assert caught.value.reason.startswith(
        f"{tmp_path / 'starts_batch_on_import.py'} line 19 calls run_batch() when the file is imported")
    assert GUARD_ADVICE in caught.value.reason
    assert list(markers.iterdir()) == []  # refused before the module ran
    assert "starts_batch_on_import" not in sys.modules


@pytest.mark.parametrize(("tail", "refused"), [
    ('if __name__ == "__main__":\n    main()\n', None),
    ('if "__main__" == __name__:\n    asyncio.run(main())\nelse:\n    pass\n', None),
    ("def main():\n    asyncio.run(go())\n\nasync def go():\n    run_batch(workflow, [])\n", None),
    ("executor = BatchExecutor(workflow)\nrunner = lambda: run_batch(workflow, [])\n", None),
    ("print(run_batch(workflow, []))\n", (1, "run_batch")),
    ("with open(__file__):\n    asyncio.run(main())\n", (2, "asyncio.run")),
    ("class Service:\n    started = main()\n", (2, "main")),
    ('if __name__ != "__main__":\n    uvloop.run(main())\n', (2, "uvloop.run")),
])
def test_entry_points_called_at_import_are_found_wherever_they_run(
        tmp_path: Path, markers: Path, monkeypatch: pytest.MonkeyPatch, tail: str,
        refused: tuple[int, str] | None) -> None:
    """``refused``: (line of ``tail``, callee) of the entry point named in the refusal."""
    monkeypatch.setenv("MARKERS", str(markers))
    head = SCRIPT + """\
    import asyncio
    import uvloop
    from shardflow import BatchExecutor


    def main():
        pass


"""
    path = tmp_path / "flow.py"
    path.write_text(textwrap.dedent(head) + tail)
    first_line_of_tail = len(textwrap.dedent(head).splitlines()) + 1
    if refused is None:
        assert load_workflow(f"{path}:workflow").name == "s"
        return
    line, call = refused[0] + first_line_of_tail - 1, refused[1]
    with pytest.raises(WorkflowLoadError) as caught:
        load_workflow(f"{path}:workflow")
    assert caught.value.reason.startswith(f"{path} line {line} calls {call}() when the file is imported")


def test_a_workflow_loaded_from_a_file_is_referred_to_by_that_file(
        tmp_path: Path, markers: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``BatchExecutor(workflow)`` hands its workers for a workflow loaded by path: the
    path, which they can import, not the module name the loader made up for it."""
    monkeypatch.setenv("MARKERS", str(markers))
    path = write(tmp_path / "by_path.py", SCRIPT)
    definition = load_workflow(f"{path}:workflow")
    assert reference_of(definition) == f"{path}:workflow"
    assert load_workflow(reference_of(definition)) is definition
