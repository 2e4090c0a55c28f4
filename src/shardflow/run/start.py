"""``shardflow run``: check everything that can be checked, then start a new run.

Every ordinary problem (an output or summary path that cannot be written, a run directory
that cannot be created, the output being the input, a missing input file) is found here,
before the run directory exists: nothing is left behind by a run that never started.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from shardflow.batch.config import RunConfig
from shardflow.batch.sources import generated, open_source
from shardflow.errors import ConfigError
from shardflow.model.definition import WorkflowDefinition
from shardflow.model.plan import check_limits
from shardflow.run.output import STDOUT, OutputWriter, check_output, describe, is_stream
from shardflow.run.record import RunRecord, input_fingerprint, new_run_id
from shardflow.run.rundir import DEFAULT_BASE, RunDir, check_new_run_dir
from shardflow.run.session import Hooks, RunResult, Session, drive, guarded


@dataclass(frozen=True, slots=True)
class RunRequest:
    target: str
    definition: WorkflowDefinition
    config: RunConfig
    input_path: str | None
    fmt: str | None
    generate: int | None
    output: str = STDOUT
    summary_json: str | None = None
    run_dir: str | None = None
    journal: bool = True
    grace_seconds: float = 10.0
    events_path: str | None = None
    """``--events``: recorded so that ``resume`` writes the events there too."""


def check_writable_file(path: str, what: str) -> None:
    """A file we are going to write: its directory exists and is writable."""
    parent = Path(path).parent
    if Path(path).is_dir():
        raise ConfigError(what, f"{path} is a directory")
    if not parent.is_dir():
        raise ConfigError(what, f"cannot write {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(what, f"cannot write {path}: directory {parent} is not writable")


def items_of(input_path: str | None, fmt: str | None, generate: int | None) -> Any:
    if generate is not None:
        return generated(generate)
    assert input_path is not None
    return open_source(input_path, fmt)


def start_run(request: RunRequest, hooks: Hooks | None = None) -> RunResult:
    """Run a batch from the start; the result carries the exit code."""
    session = Session(request.target, request.definition, request.config, hooks or Hooks(),
                      request.summary_json, request.grace_seconds)
    return guarded(session, lambda: _start(session, request))


def _start(session: Session, request: RunRequest) -> RunResult:
    definition = request.definition
    check_limits(definition.plan, request.config.limits, request.config.rate_limits)
    check_output(request.output, request.input_path)
    if request.summary_json:
        check_writable_file(request.summary_json, "summary_json")
    items = items_of(request.input_path, request.fmt, request.generate)
    record = None
    if request.journal:
        record = RunRecord(
            run_id=new_run_id(), target=request.target, workflow=definition.fingerprint(),
            input=input_fingerprint(request.input_path, request.fmt, request.generate),
            output=None if request.output == STDOUT else os.path.abspath(request.output),
            stream=is_stream(request.output), config=asdict(request.config),
            events=os.path.abspath(request.events_path) if request.events_path else None)
        # The default place is checked too, and the run directory made before the output is
        # truncated: a run that cannot start leaves the user's output as it was.
        run_dir_path = Path(request.run_dir) if request.run_dir else DEFAULT_BASE / record.run_id
        check_new_run_dir(run_dir_path)
        session.run_dir = RunDir.create(run_dir_path, record)
        session.hooks.notify(f"run {record.run_id} (run directory {session.run_dir.path}, "
                             f"output {describe(request.output)})")
    writer = OutputWriter(request.output, truncate=True)
    return drive(session, items, writer, source=request.input_path or "<generated>",
                 total=request.generate)
