"""``shardflow resume``: one resume plan, from the run directory's journal and task store.

The plan says what is done (skipped), what waits for people and is ready to go on, and what
the output must hold. It refuses -- before anything runs or changes -- a run held by another
process, a ``run.json`` that is damaged or not ours, a changed workflow or input, and a
journal damaged before its last line (unless ``repair``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from shardflow._text import plural
from shardflow.batch.jobs import Job
from shardflow.batch.sources import Item, count_records
from shardflow.engine.passive import parks_timers, wait_kinds
from shardflow.errors import ConfigError
from shardflow.model.loader import load_workflow
from shardflow.model.tasks import TIMER
from shardflow.run.drive import whole_run_exit_code
from shardflow.run.embedded import EMBEDDED_INPUT
from shardflow.run.errors import JournalDamagedError
from shardflow.run.events_file import EventsFile
from shardflow.run.journal_state import (
    RETRY,
    JournalState,
    expected_output,
    intact_entries,
    read_state,
)
from shardflow.run.output import STDOUT, OutputWriter, is_stream, reconcile
from shardflow.run.record import RunRecord, input_fingerprint
from shardflow.run.rundir import RunDir
from shardflow.run.session import (
    Hooks,
    RunResult,
    Session,
    drive,
    guarded,
    parked_timers,
    with_parked_timers,
)
from shardflow.run.start import check_writable_file, items_of
from shardflow.run.timer_watch import DEFAULT_WAIT_SECONDS, fire_due
from shardflow.store.journal import FileJournal, cut_torn_tail, rewrite_journal


@dataclass(frozen=True, slots=True)
class ResumeRequest:
    path: str
    target: str | None = None
    input_path: str | None = None
    fmt: str | None = None
    generate: int | None = None
    summary_json: str | None = None
    grace_seconds: float = 10.0
    repair: bool = False
    retry_failed: bool = False
    wait_timers: float = DEFAULT_WAIT_SECONDS


def resume_run(request: ResumeRequest, hooks: Hooks | None = None) -> RunResult:
    """Continue the run in ``request.path``: skip what its journal holds, run the rest, and
    continue waiting instances whose tasks are all completed."""
    hooks = hooks or Hooks()
    if request.summary_json:
        check_writable_file(request.summary_json, "summary_json")
    run_dir = RunDir.open(Path(request.path))
    try:
        record = run_dir.record
        hooks.notify(f"run {record.run_id} ran workflow {record.target}; importing it")
        check_same_run(record, request)
        definition = load_workflow(record.target)
    except BaseException:
        run_dir.close()
        raise
    events = _recorded_events(record, hooks, run_dir)
    if events is not None:
        hooks = replace(hooks, events=events)
    session = Session(record.target, definition, record.run_config(), hooks,
                      request.summary_json, request.grace_seconds, run_dir=run_dir,
                      wait_timers=request.wait_timers)
    try:
        return guarded(session, lambda: _resume(session, request))
    finally:
        if events is not None:
            events.close()


def _recorded_events(record: RunRecord, hooks: Hooks, run_dir: RunDir) -> EventsFile | None:
    """The run's ``--events`` file, when this session was given none: the instances it runs
    again after a crash send their events there, as the run's did (at least once)."""
    if hooks.events is not None or record.events is None:
        return None
    try:
        events = EventsFile(record.events)
    except OSError as exc:
        run_dir.close()
        raise ConfigError("resume", f"events file {record.events} of run {record.run_id}: "
                          f"{exc.strerror or exc}; give --events FILE") from None
    hooks.notify(f"events go to {record.events}, as the run's")
    return events


def check_same_run(record: RunRecord, request: ResumeRequest) -> None:
    """The workflow and the input must be the ones the run started with."""
    if request.target is not None and request.target != record.target:
        raise ConfigError("resume", f"run {record.run_id} ran {record.target!r}, not "
                          f"{request.target!r}")
    if record.input == EMBEDDED_INPUT:
        raise ConfigError("resume", f"run {record.run_id} is an embedded BatchExecutor's (its "
                          "input was submissions); continue its waiting instances with "
                          "'await executor.continue_waiting()' in an executor on this directory")
    if record.input.get("stdin"):
        raise ConfigError("resume", "the run read its input from stdin, which cannot be read again")
    recorded_path = record.input.get("path")
    if request.input_path is not None or request.generate is not None:
        given = input_fingerprint(request.input_path, request.fmt or record.input.get("format"),
                                  request.generate)
        if given != record.input:
            raise ConfigError("resume", f"run {record.run_id} read a different input "
                              f"({recorded_path or record.input}); resume with the same one")
    if recorded_path is not None and not Path(recorded_path).is_file():
        raise ConfigError("resume", f"input {recorded_path} of run {record.run_id} is gone")
    current = input_fingerprint(recorded_path, record.input.get("format"),
                                record.input.get("generate"))
    if current != record.input:
        raise ConfigError("resume", f"input {recorded_path} changed since run {record.run_id} "
                          "started; resuming would mix two inputs")


def _resume(session: Session, request: ResumeRequest) -> RunResult:
    run_dir = session.run_dir
    assert run_dir is not None
    record = run_dir.record
    fingerprint = session.definition.fingerprint()
    if fingerprint != record.workflow:
        raise ConfigError("resume", f"workflow {record.target!r} changed since run "
                          f"{record.run_id} started (recorded {record.workflow}, now "
                          f"{fingerprint}); resume with the same definition")
    state = _journal_state(run_dir, request, session.hooks)
    ready = []
    timer_soon = False  # a parked timer due within --wait-timers: the session waits for it
    if run_dir.tasks_path.exists():
        store = run_dir.task_store()
        store.classify(session.definition.name, wait_kinds(session.definition.plan))
        already = [w.instance_id for w in store.ready_instances()
                   if w.seq in state.finished_after_wait]
        if already:
            store.mark_finished(already)
        fire_due(store, session.definition.plan, time.time())
        ready = store.ready_instances()
        due = store.next_due(TIMER)
        timer_soon = due is not None and due - time.time() <= request.wait_timers
    changed = bool(state.damage) or (request.retry_failed and bool(state.withdrawn))
    if record.finished and not ready and not changed and not timer_soon:
        # Even with nothing to run, the output is made right: a resume stopped after it
        # continued instances left their ``waiting`` lines beside their final ones.
        timers = parked_timers(session)
        try:
            _reconcile(session, state)
        finally:
            run_dir.close()
        session.hooks.notify(f"run {record.run_id} is already finished; nothing to resume "
                             "(no waiting instance has all its tasks completed): "
                             + (", ".join(f"{k} {v}" for k, v in sorted(state.counts.items()))
                                or "no instances"))
        code = with_parked_timers(session, whole_run_exit_code(state.counts), timers)
        return RunResult(code, run_dir.path, totals=state.counts)
    session.hooks.notify(f"resuming run {record.run_id}: {plural(state.done.count, 'instance')} "
                         f"already done, {plural(len(ready), 'waiting instance')} ready to continue")
    session.prior, session.done, session.ready = state.counts, state.done, ready
    writer = _output(session, state)
    path, fmt, generate = record.input.get("path"), record.input.get("format"), record.input.get("generate")
    items = items_of(path, fmt, generate)
    if state.retried:
        items = _next_attempts(items, state.retried)
    total = generate if generate is not None else count_records(path, fmt) if path else None
    return drive(session, items, writer, source=path or "<generated>",
                 total=None if total is None else max(total - state.done.count, 0) + len(ready))


def _next_attempts(items: Iterator[Item], retried: dict[int, int]) -> Iterator[Item]:
    """The input, with each instance ``--retry-failed`` runs again as its next attempt
    (``attempts`` in its record and journal entry counts every run of it)."""
    for item in items:
        prior = retried.get(item.seq)
        if prior is not None and isinstance(item, Job):
            item.attempt = prior + 1
        yield item


def _journal_state(run_dir: RunDir, request: ResumeRequest, hooks: Hooks) -> JournalState:
    """Read the journal; stop on damage before its last line unless ``repair``; with
    ``retry_failed``, withdraw the failed records so those instances run again."""
    path = run_dir.journal_path
    state = read_state(path)
    if state.damage and not request.repair:
        first = state.damage[0]
        raise JournalDamagedError(path, first.number, first.reason, len(state.damage) - 1)
    if state.damage:
        rewrite_journal(path, intact_entries(path))
        hooks.notify(f"repaired {path}: dropped {len(state.damage)} damaged line(s) "
                     f"(first: line {state.damage[0].number}, {state.damage[0].reason}); "
                     "their instances run again")
        damage = state.damage
        state = read_state(path)  # line numbers changed: --retry-failed needs the new ones
        state.damage = damage
    elif state.torn:
        cut_torn_tail(path)
    if request.retry_failed and state.failed_lines:
        journal = FileJournal(path)
        journal.append_many([(seq, RETRY, b"%d" % number)
                             for seq, number in sorted(state.failed_lines.items())])
        journal.close()
        hooks.notify(f"retrying {plural(len(state.failed_lines), 'failed instance')} as new attempts")
        damage = state.damage
        state = read_state(path)
        state.damage = damage
    return state


def _reconcile(session: Session, state: JournalState) -> Callable[[], Iterator[bytes]] | None:
    """Make a regular output file agree with the journal (one line per instance, its latest
    record); returns how to compute those lines again, or None for a stream (stdout, pipe,
    FIFO, device), which cannot be read back."""
    run_dir = session.run_dir
    assert run_dir is not None
    record = run_dir.record
    path = record.output or STDOUT
    if record.stream or is_stream(path):  # never read back a FIFO or a device
        return None
    ordered = record.run_config().ordered

    def expected() -> Iterator[bytes]:
        return expected_output(run_dir.journal_path, state.withdrawn, ordered=ordered)

    if not Path(path).exists():  # deleted since: made again from the journal
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o666))
    done = reconcile(Path(path), expected)
    if done != "unchanged":
        session.hooks.notify(f"output {path}: {done} from the journal")
    return expected


def _output(session: Session, state: JournalState) -> OutputWriter:
    """Open the output for this session, first making a regular file agree with the journal.
    A stream gets only this session's results."""
    run_dir = session.run_dir
    assert run_dir is not None
    record = run_dir.record
    path = record.output or STDOUT
    expected = _reconcile(session, state)
    if expected is None:
        session.hooks.notify(f"output {record.output or 'stdout'} is a stream: this session "
                             f"writes only its own results; the {state.done.count} earlier "
                             f"ones are in {run_dir.journal_path}")
        return OutputWriter(path, truncate=False)
    writer = OutputWriter(path, truncate=False)  # after a rebuild: the new file
    if record.run_config().ordered or session.ready or parks_timers(session.definition.plan):
        session.after = lambda: _settle(session, path, expected)
    return writer


def _settle(session: Session, path: str, expected: Callable[[], Iterator[bytes]]) -> None:
    """After a session that went to its end, the file holds one line per instance, in order:
    a continued instance's final record replaces its ``waiting`` line (the session appended
    it), and an ordered run's file is put back in input order where sessions overlapped."""
    done = reconcile(Path(path), expected)
    if done == "rebuilt":
        session.hooks.notify(f"output {path}: one line per instance, the latest record of "
                             "each" + (", in input order" if session.run_dir is not None
                                       and session.run_dir.record.run_config().ordered else ""))
