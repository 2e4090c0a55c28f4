"""A new step rule is written in one module: ``engine/attempt.py``.

The next features (step hooks such as ``can_execute``) add rules to every step attempt. This
test adds one, a *guard* a step may declare and that is called before the step runs (a guard
that says no fails the step), by editing ``engine/attempt.py`` alone, in a copy of the
package, and shows that the interpreter and the compiled schedules both apply it: the edit is
the whole change."""

from __future__ import annotations

import filecmp
import json
import shutil
import subprocess
import sys
from pathlib import Path

import shardflow

PACKAGE = Path(shardflow.__file__).parent

# The edit: a step with a guard is not plain (so a schedule runs it through run_step, as the
# interpreter does), and run_step asks the guard before it attempts the step.
EDITS = [
    ("    return not (step.retries or step.timeout_seconds is not None",
     "    return getattr(step, 'guard', None) is None and not (\n"
     "        step.retries or step.timeout_seconds is not None"),
    ("    if is_plain(step, gate is not None):\n",
     "    guard = getattr(step, 'guard', None)\n"
     "    if guard is not None and not guard(ctx):\n"
     "        raise StepFailure(path, PermissionError(f'{path}: the guard said no'), ctx)\n"
     "    if is_plain(step, gate is not None):\n"),
]

SCRIPT = r'''
import asyncio, json
from shardflow import BaseMachineStep, Edge, LocalExecutionEngine, WorkflowDefinition, WorkflowRegistry
from shardflow.engine.schedule import schedule_for

calls = []

class Guarded(BaseMachineStep):
    def guard(self, ctx):
        calls.append(("guard", self.name, ctx.get("id")))
        return not (self.name == "b" and ctx.get("id") == 2)

    async def execute(self, ctx):
        calls.append(("step", self.name, ctx.get("id")))
        ctx.set(self.name, True)

def make(name, conditional):
    steps = {n: type(n, (Guarded,), {"name": n})() for n in "abc"}
    when = (lambda ctx: True) if conditional else None
    return WorkflowDefinition(name=name, steps=steps, initial_step="a", terminal_steps={"c"},
                              edges=[Edge("a", "b", condition=when), Edge("b", "c")])

async def main():
    registry = WorkflowRegistry()
    results = {}
    for name, conditional in (("compiled", False), ("interpreted", True)):
        definition = make(name, conditional)
        registry.register_definition(definition)
        compiled = schedule_for(definition.plan, (False, False)) is not None
        engine = LocalExecutionEngine(registry)
        calls.clear()
        ends = []
        for i in (1, 2):
            instance = await engine.start_workflow(name, {"id": i})
            ends.append([instance.status.value, instance.error and instance.error.step,
                         instance.error and instance.error.message])
        results[name] = {"compiled": compiled, "calls": list(calls), "ends": ends}
    print(json.dumps(results))

asyncio.run(main())
'''


def test_a_guard_before_every_step_is_one_edit_of_the_attempt_module(tmp_path: Path) -> None:
    copy = tmp_path / "src" / "shardflow"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    module = copy / "engine" / "attempt.py"
    source = module.read_text()
    for old, new in EDITS:
        assert source.count(old) == 1, f"attempt.py no longer has {old!r}"
        source = source.replace(old, new)
    module.write_text(source)

    changed = _changed_files(PACKAGE, copy)
    assert changed == ["engine/attempt.py"]

    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         env={"PYTHONPATH": str(copy.parent)}, timeout=60, check=True)
    results = json.loads(out.stdout)
    expected_calls = [
        ["guard", "a", 1], ["step", "a", 1], ["guard", "b", 1], ["step", "b", 1],
        ["guard", "c", 1], ["step", "c", 1],
        ["guard", "a", 2], ["step", "a", 2], ["guard", "b", 2],  # refused: b never runs
    ]
    for form, compiled in (("compiled", True), ("interpreted", False)):
        assert results[form]["compiled"] is compiled
        assert results[form]["calls"] == expected_calls, form
        assert results[form]["ends"] == [["completed", None, None],
                                         ["failed", "b", "b: the guard said no"]], form


def _changed_files(original: Path, copy: Path) -> list[str]:
    """Python files that differ between two copies of the package (relative paths)."""
    changed = []
    for path in sorted(original.rglob("*.py")):
        rel = path.relative_to(original)
        if not filecmp.cmp(path, copy / rel, shallow=False):
            changed.append(rel.as_posix())
    return changed
