"""One session of a run: open the output and the ledger, run the coordinator, close, score.

Both ``run`` and ``resume`` end here (:func:`drive`). The order of the end matters: results
are journalled before they are written; the journal is closed before ``run.json`` says the
run is finished; and a failed write (output, journal, task store) leaves the run resumable.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson

from shardflow._text import plural
from shardflow.batch.config import RunConfig
from shardflow.batch.coordinator import Coordinator, RunOutcome, summary_dict
from shardflow.batch.run_core import EventsCallback, ResultObserver
from shardflow.batch.sources import Item
from shardflow.batch.stats import RunStats
from shardflow.engine.passive import parks_timers
from shardflow.model.definition import WorkflowDefinition
from shardflow.model.tasks import TIMER
from shardflow.run.drive import Ended, exit_code, note_write_error, run_coordinator
from shardflow.run.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_PARKED, EXIT_TERMINATED
from shardflow.run.journal_ledger import JournalLedger, resume_job
from shardflow.run.journal_state import expected_output
from shardflow.run.output import STDOUT, OutputWriter, is_stream, reconcile
from shardflow.run.record import write_private
from shardflow.run.rundir import RunDir
from shardflow.run.signals import Terminated, terminate_by_exception
from shardflow.run.timer_watch import DEFAULT_WAIT_SECONDS, TimerWatch, due_text
from shardflow.store.journal import SeqSet
from shardflow.store.tasks import WaitingInstance


class Display(Protocol):
    """The progress display the CLI hands in (called about four times a second)."""

    def __call__(self, stats: RunStats, in_flight: int) -> None: ...

    def close(self) -> None: ...


def _to_stderr(message: str) -> None:
    sys.stderr.write(f"shardflow: {message}\n")


def _no_display(total: int | None) -> Display | None:
    return None


@dataclass(frozen=True, slots=True)
class Hooks:
    """How a run talks to whoever started it: messages, and a progress display."""

    notify: Callable[[str], None] = _to_stderr
    progress: Callable[[int | None], Display | None] = _no_display
    observer: ResultObserver | None = None
    """Sees every result and the pool (``--metrics-port``'s metrics)."""
    events: EventsCallback | None = None
    """Receives the instances' lifecycle events (``--events``); None: workers record none."""


@dataclass
class RunResult:
    exit_code: int
    run_dir: Path | None = None
    outcome: RunOutcome | None = None
    totals: Counter[str] = field(default_factory=Counter)


@dataclass
class Session:
    """What one session works with; ``run_dir`` is known once it exists (an interrupt after
    that point prints the resume hint)."""

    target: str
    definition: WorkflowDefinition
    config: RunConfig
    hooks: Hooks
    summary_json: str | None
    grace: float
    run_dir: RunDir | None = None
    prior: Counter[str] = field(default_factory=Counter)
    """The whole run's counts before this session (from the journal)."""
    done: SeqSet = field(default_factory=SeqSet)
    ready: list[WaitingInstance] = field(default_factory=list)
    after: Callable[[], None] | None = None
    """Run after a session that went to its end or was stopped (settles the output: one line
    per instance)."""
    wait_timers: float = DEFAULT_WAIT_SECONDS
    """``--wait-timers``: with nothing else to do, how long the run waits for its next parked
    timer (``run/timer_watch.py``)."""


def guarded(session: Session, body: Callable[[], RunResult]) -> RunResult:
    """Run ``body``; an interrupt at any moment (start-up included) ends with 130 (SIGINT) or
    143 (SIGTERM) and, once the run directory exists, the resume hint; never a traceback."""
    terminate_by_exception()
    try:
        return body()
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    except Terminated:
        code = EXIT_TERMINATED
    except BaseException:
        if session.run_dir is not None:  # the lock too: a caller may try again in-process
            session.run_dir.close()
        raise
    if session.run_dir is not None:
        session.hooks.notify(f"run interrupted; continue it with: shardflow resume "
                             f"{session.run_dir.path}")
        session.run_dir.close()
    else:
        session.hooks.notify("interrupted (no run directory: nothing to resume)")
    return RunResult(code, session.run_dir.path if session.run_dir else None)


def drive(session: Session, items: Iterator[Item], writer: OutputWriter, *, source: str,
          total: int | None) -> RunResult:
    run_dir = session.run_dir
    ledger = None
    if run_dir is not None:
        ledger = run_dir.ledger(session.definition, session.done, session.ready)
    display = session.hooks.progress(total)
    watch = None
    if run_dir is not None and ledger is not None and parks_timers(session.definition.plan):
        watch = TimerWatch(run_dir.task_store, session.definition.plan, ledger,
                           session.wait_timers, started=session.ready, notify=session.hooks.notify)
    coordinator = Coordinator(session.target, session.config, writer, source_name=source,
                              progress=display, ledger=ledger,
                              resume=[resume_job(w) for w in session.ready],
                              grace_seconds=session.grace, output_name=writer.name,
                              scratch_dir=run_dir.path if run_dir is not None else None,
                              observer=session.hooks.observer, on_events=session.hooks.events,
                              watch=watch)
    try:
        ended = run_coordinator(coordinator, items)
    finally:
        if display is not None:
            display.close()
    if watch is not None and watch.continued and session.after is None and run_dir is not None:
        session.after = lambda: _settle_output(run_dir)
    _close(ended, writer, ledger)
    return _finish(session, ended)


def _close(ended: Ended, writer: OutputWriter, ledger: JournalLedger | None) -> None:
    try:
        writer.close()
    except OSError as exc:
        note_write_error(ended, exc, writer.name)
    if ledger is not None:
        try:
            ledger.close()
        except OSError as exc:
            note_write_error(ended, exc, str(ledger.journal.path))


def _finish(session: Session, ended: Ended) -> RunResult:
    hooks, run_dir = session.hooks, session.run_dir
    outcome = ended.outcome
    if not ended.broken_pipe:  # quiet, like `yes | head`
        hooks.notify(outcome.render().removeprefix("shardflow: "))
        if outcome.stats.examples and run_dir is not None:
            hooks.notify(f"list every failed instance with its message: shardflow runs show "
                         f"{run_dir.path} --failed")
    totals = Counter(session.prior)
    totals.update(outcome.stats.counts)
    totals["waiting"] -= outcome.resumed_finished
    totals = +totals
    result = RunResult(exit_code(ended, totals), run_dir.path if run_dir else None, outcome,
                       totals)
    try:
        timers = parked_timers(session)
        _write_summaries(session, outcome, totals, timers)
        if ended.storage is None and not ended.broken_pipe and not outcome_interrupted(ended):
            _mark_finished(session, totals)
            result.exit_code = with_parked_timers(session, result.exit_code, timers)
        elif ended.storage is None and session.after is not None:
            session.after()  # stopped mid-way: the output still holds one line per instance
    except OSError as exc:
        note_write_error(ended, exc, "the summary")
    finally:
        if run_dir is not None:
            run_dir.close()
    if ended.storage is not None:
        if run_dir is not None:
            hooks.notify(f"what was journalled is kept; after fixing this, continue with: "
                         f"shardflow resume {run_dir.path}")
        raise ended.storage
    if outcome_interrupted(ended) and run_dir is not None:
        hooks.notify(f"run interrupted; continue it with: shardflow resume {run_dir.path}")
    return result


def outcome_interrupted(ended: Ended) -> bool:
    return ended.outcome.interrupted


def timers_only(run_dir: RunDir) -> int:
    """Waiting instances whose only open tasks are timers (time, not people, acts next)."""
    if not run_dir.tasks_path.exists():
        return 0
    open_tasks = run_dir.task_store().list_tasks()
    others = {t.instance_id for t in open_tasks if t.kind != TIMER}
    return len({t.instance_id for t in open_tasks if t.kind == TIMER} - others)


def with_parked_timers(session: Session, code: int, timers: tuple[int, float | None]) -> int:
    """The exit code of a session that went to its end: ``code``, or :data:`EXIT_PARKED`
    (said, with when the next is due) if all is well but timers stay parked."""
    count, due = timers
    if not count or due is None:
        return code
    session.hooks.notify(f"{plural(count, 'timer')} parked, the next due at {due_text(due)} "
                         f"(later than --wait-timers {session.wait_timers:g} s): 'shardflow "
                         f"resume {session.run_dir.path if session.run_dir else ''}' continues "
                         f"those that are due (exit {EXIT_PARKED})")
    return EXIT_PARKED if code == EXIT_OK else code


def parked_timers(session: Session) -> tuple[int, float | None]:
    """How many timers of the run are parked, and when the first is due (wall time)."""
    run_dir = session.run_dir
    if run_dir is None or not run_dir.tasks_path.exists():
        return 0, None
    due = [t.due_at for t in run_dir.task_store().list_tasks(kinds=[TIMER])
           if t.due_at is not None]
    return len(due), min(due, default=None)


def _settle_output(run_dir: RunDir) -> None:
    """A run that continued its own parked timers wrote their ``waiting`` lines and then
    their final ones: a regular output file is made to hold one line per instance, its
    latest record (a stream keeps both)."""
    record = run_dir.record
    path = record.output or STDOUT
    if record.stream or is_stream(path):
        return
    ordered = record.run_config().ordered
    reconcile(Path(path), lambda: expected_output(run_dir.journal_path, set(), ordered=ordered))


def _write_summaries(session: Session, outcome: RunOutcome, totals: Counter[str],
                     timers: tuple[int, float | None]) -> None:
    summary: dict[str, Any] = summary_dict(outcome, {"run_totals": dict(totals)})
    if timers[0]:
        summary["parked_timers"] = {"count": timers[0], "next_due": timers[1]}
    if session.run_dir is not None:
        summary["run_id"] = session.run_dir.record.run_id
        write_private(session.run_dir.summary_path, _json(summary))
    if session.summary_json:
        Path(session.summary_json).write_bytes(_json(summary))


def _json(data: dict[str, Any]) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_INDENT_2)


def _mark_finished(session: Session, totals: Counter[str]) -> None:
    run_dir, hooks = session.run_dir, session.hooks
    if session.after is not None:
        session.after()
    if run_dir is None:
        return
    run_dir.record.finished = True
    run_dir.save()
    waiting = run_dir.task_store().waiting_count() if run_dir.tasks_path.exists() else 0
    waiting -= timers_only(run_dir)
    if waiting > 0:
        verb = "waits" if waiting == 1 else "wait"
        hooks.notify(f"{plural(waiting, 'instance')} {verb} for people: see 'shardflow tasks "
                     f"list {run_dir.path}', then 'shardflow resume {run_dir.path}'")
    if session.prior:
        hooks.notify("whole run: " + ", ".join(f"{k} {v}" for k, v in sorted(totals.items())))
