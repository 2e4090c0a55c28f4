"""``shardflow run`` and ``shardflow resume``: input, run directory, coordinator, summary.

Exit codes: 0 every instance completed or is waiting for people; 1 some failed or had invalid
input; 130 interrupted (the run can be resumed).
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

import orjson
import uvloop

from shardflow.batch import protocol as p
from shardflow.batch.config import RunConfig
from shardflow.batch.coordinator import Coordinator, RunOutcome, summary_dict
from shardflow.batch.jobs import Job
from shardflow.batch.ledger import RunLedger, resume_job
from shardflow.batch.loader import load_workflow
from shardflow.batch.rundir import RunDir, RunRecord, input_fingerprint, new_run_id
from shardflow.batch.sinks import JsonlSink
from shardflow.batch.sources import generated, open_source
from shardflow.cli.progress import Progress
from shardflow.errors import ConfigError
from shardflow.model.definition import WorkflowDefinition
from shardflow.model.plan import check_limits
from shardflow.store.journal import FileJournal, SeqSet, read_journal

EXIT_INTERRUPTED = 130
_WAITING = p.STATUS_INDEX["waiting"]


def execute_run(target: str, definition: WorkflowDefinition, config: RunConfig, *,
                input_path: str | None, fmt: str | None, generate: int | None, output: str,
                summary_json: str | None, progress: bool, run_dir: str | None, journal: bool,
                grace_seconds: float) -> int:
    """Run a batch from the start; return the exit code."""
    check_limits(definition.plan, config.limits, config.rate_limits)
    items = _items(input_path, fmt, generate)
    rundir = None
    if journal:
        record = RunRecord(
            run_id=new_run_id(), target=target, workflow=definition.fingerprint(),
            input=input_fingerprint(input_path, fmt, generate),
            output=output if output == "-" else str(Path(output).resolve()), config=asdict(config),
        )
        rundir = RunDir.create(Path(run_dir) if run_dir else None, record)
        sys.stderr.write(f"shardflow: run {record.run_id} (run directory {rundir.path})\n")
    if output != "-" and Path(output).exists():
        Path(output).unlink()  # a new run writes a new output file
    return _drive(target, definition, config, items, output, rundir, SeqSet(), [], Counter(),
                  summary_json=summary_json, progress=progress, grace=grace_seconds,
                  source=input_path or "<generated>", total=generate)


def execute_resume(path: str, *, target: str | None, input_path: str | None, fmt: str | None,
                   generate: int | None, summary_json: str | None, progress: bool,
                   grace_seconds: float) -> int:
    """Continue the run in ``path``: skip what its journal holds, run the rest, and continue
    waiting instances whose tasks are all completed."""
    rundir = RunDir.open(Path(path))
    record = rundir.record
    if target is not None and target != record.target:
        raise ConfigError("resume", f"run {record.run_id} ran {record.target!r}, not {target!r}")
    definition = load_workflow(record.target)
    if definition.fingerprint() != record.workflow:
        raise ConfigError("resume", f"workflow {record.target!r} changed since run "
                          f"{record.run_id} started (recorded {record.workflow}, now "
                          f"{definition.fingerprint()}); resume with the same definition")
    if record.input.get("stdin"):
        raise ConfigError("resume", "the run read its input from stdin, which cannot be read again")
    recorded_path = record.input.get("path")
    if input_path is not None or generate is not None:
        given = input_fingerprint(input_path, fmt or record.input.get("format"), generate)
        if given != record.input:
            raise ConfigError("resume", f"run {record.run_id} read a different input "
                              f"({recorded_path or record.input}); resume with the same one")
    current = input_fingerprint(recorded_path, record.input.get("format"), record.input.get("generate"))
    if current != record.input:
        raise ConfigError("resume", f"input {recorded_path} changed since run {record.run_id} "
                          "started; resuming would mix two inputs")
    done, prior, finished_after_wait = _read_back(rundir, record)
    ready = []
    if rundir.tasks_path.exists():
        store = rundir.task_store()
        already = [w.instance_id for w in store.ready_instances() if w.seq in finished_after_wait]
        store.mark_finished(already)
        ready = [resume_job(w) for w in store.ready_instances()]
    if record.finished and not ready:
        sys.stderr.write(f"shardflow: run {record.run_id} is already finished; nothing to "
                         "resume (no waiting instance has all its tasks completed)\n")
        return 0
    sys.stderr.write(f"shardflow: resuming run {record.run_id}: {done.count} instances already "
                     f"done, {len(ready)} waiting instances ready to continue\n")
    items = _items(recorded_path, record.input.get("format"), record.input.get("generate"))
    return _drive(record.target, definition, record.run_config(), items, record.output or "-",
                  rundir, done, ready, prior, summary_json=summary_json, progress=progress,
                  grace=grace_seconds, source=recorded_path or "<generated>",
                  total=record.input.get("generate"))


def _items(input_path: str | None, fmt: str | None, generate: int | None) -> Any:
    if generate is not None:
        return generated(generate)
    assert input_path is not None
    return open_source(input_path, fmt)


def _read_back(rundir: RunDir, record: RunRecord) -> tuple[SeqSet, Counter[str], set[int]]:
    """Read the journal: which positions are done, the counts so far, and which waiting
    instances already have a final result. The output file is rebuilt from the journal, so
    it holds exactly what the journal holds, whatever the crash left in it."""
    done = SeqSet()
    counts: Counter[str] = Counter()
    waiting: set[int] = set()
    finished_after_wait: set[int] = set()
    entries = read_journal(rundir.journal_path)
    lines: list[tuple[int, bytes]] = []
    output = record.output or "-"
    out = sys.stdout.buffer if output == "-" else open(output + ".rebuild", "wb")  # noqa: SIM115
    try:
        for seq, status, line in entries:
            done.add(seq)
            counts[p.STATUS_CODES[status]] += 1
            if seq in waiting and status != _WAITING:
                counts["waiting"] -= 1
                finished_after_wait.add(seq)
            if status == _WAITING:
                waiting.add(seq)
            if record.config.get("ordered"):
                lines.append((seq, line))
            else:
                out.write(line + b"\n")
        for _, line in sorted(lines, key=lambda item: item[0]):
            out.write(line + b"\n")
    finally:
        out.flush()
        if out is not sys.stdout.buffer:
            out.close()
            os.replace(output + ".rebuild", output)
    return done, +counts, finished_after_wait


def _drive(target: str, definition: WorkflowDefinition, config: RunConfig, items: Any,
           output: str, rundir: RunDir | None, done: SeqSet, resume: list[Job],
           prior: Counter[str], *, summary_json: str | None, progress: bool, grace: float,
           source: str, total: int | None) -> int:
    ledger = None
    if rundir is not None:
        ledger = RunLedger(FileJournal(rundir.journal_path), rundir.task_store,
                           definition.name, definition.version, done)
    sink = JsonlSink(output)
    display = Progress(total, enabled=progress)
    coordinator = Coordinator(target, config, sink, source_name=source, progress=display,
                              ledger=ledger, resume=resume, grace_seconds=grace)
    try:
        outcome = uvloop.run(coordinator.run(items))
    finally:
        display.close()
        sink.close()
        if ledger is not None:
            ledger.close()
    return _finish(outcome, rundir, prior, summary_json)


def _finish(outcome: RunOutcome, rundir: RunDir | None, prior: Counter[str],
            summary_json: str | None) -> int:
    sys.stderr.write(outcome.render() + "\n")
    totals = prior + outcome.stats.counts
    totals["waiting"] -= outcome.resumed_finished
    totals = +totals
    summary = summary_dict(outcome, {"run_totals": dict(totals)})
    if rundir is not None:
        summary["run_id"] = rundir.record.run_id
        (rundir.summary_path).write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    if summary_json:
        Path(summary_json).write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    if outcome.interrupted:
        if rundir is not None:
            sys.stderr.write(f"shardflow: run interrupted; continue it with: "
                             f"shardflow resume {rundir.path}\n")
            rundir.close()
        return EXIT_INTERRUPTED
    if rundir is not None:
        rundir.record.finished = True
        rundir.save()
        if rundir.tasks_path.exists():
            waiting = rundir.task_store().waiting_count()
            if waiting:
                sys.stderr.write(f"shardflow: {waiting} instances wait for people: see "
                                 f"'shardflow tasks list {rundir.path}', then "
                                 f"'shardflow resume {rundir.path}'\n")
        rundir.close()
    if prior:
        sys.stderr.write("shardflow: whole run: " + ", ".join(
            f"{k} {v}" for k, v in sorted(totals.items())) + "\n")
    bad = totals.get("failed", 0) + totals.get("invalid_input", 0)
    return 1 if bad else 0
