"""``shardflow run`` and ``shardflow resume``: parse, call :mod:`shardflow.run`, print.

Exit codes: see ``shardflow --help`` (:data:`shardflow.cli.main.EXIT_CODES_HELP`) and the README.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager, nullcontext

from shardflow.batch.config import RunConfig
from shardflow.batch.run_core import ResultObserver
from shardflow.cli.metrics_option import serving_metrics
from shardflow.cli.progress import Progress
from shardflow.errors import ShardflowError
from shardflow.model.definition import WorkflowDefinition
from shardflow.run import Hooks, ResumeRequest, RunRequest, resume_run, start_run
from shardflow.run.events_file import EventsFile

_log = logging.getLogger("shardflow")


def _notify(message: str) -> None:
    """Notices of the run (where its directory is, the summary ...) at INFO: ``-q`` hides them."""
    _log.info("%s", message)


def _hooks(progress: bool, every: float, input_path: str | None = None,
           fmt: str | None = None, observer: ResultObserver | None = None,
           events: EventsFile | None = None) -> Hooks:
    def display(total: int | None) -> Progress:
        shown = Progress(total, enabled=progress, every=every)
        if input_path is not None:
            shown.count_in_background(input_path, fmt)
        return shown

    return Hooks(notify=_notify, progress=display, observer=observer, events=events)


def _events_file(path: str | None) -> AbstractContextManager[EventsFile | None]:
    """The ``--events`` file, open for appending, if one was given (one that cannot be
    opened is a usage error naming it, before anything runs)."""
    if path is None:
        return nullcontext()
    try:
        return EventsFile(path)
    except OSError as exc:
        raise ShardflowError(f"--events {path}: {exc.strerror or exc}") from None


def execute_run(target: str, definition: WorkflowDefinition, config: RunConfig, *,
                input_path: str | None, fmt: str | None, generate: int | None, output: str,
                summary_json: str | None, progress: bool, run_dir: str | None, journal: bool,
                grace_seconds: float, progress_every: float = 10.0,
                metrics_port: int | None = None, metrics_host: str = "0.0.0.0",
                events_path: str | None = None) -> int:
    """Run a batch from the start; return the exit code. With ``metrics_port``, serve
    ``/metrics`` and ``/healthz`` while it runs; with ``events_path``, append the events."""
    request = RunRequest(target, definition, config, input_path, fmt, generate, output,
                         summary_json, run_dir, journal, grace_seconds, events_path)
    with serving_metrics(metrics_port, metrics_host) as metrics, \
            _events_file(events_path) as events:
        hooks = _hooks(progress, progress_every, input_path, fmt, metrics, events)
        return start_run(request, hooks).exit_code


def execute_resume(path: str, *, target: str | None = None, input_path: str | None = None,
                   fmt: str | None = None, generate: int | None = None,
                   summary_json: str | None = None, progress: bool = True,
                   grace_seconds: float = 10.0, repair: bool = False,
                   retry_failed: bool = False, progress_every: float = 10.0,
                   metrics_port: int | None = None, metrics_host: str = "0.0.0.0",
                   events_path: str | None = None) -> int:
    request = ResumeRequest(path, target, input_path, fmt, generate, summary_json,
                            grace_seconds, repair, retry_failed)
    with serving_metrics(metrics_port, metrics_host) as metrics, \
            _events_file(events_path) as events:
        hooks = _hooks(progress, progress_every, observer=metrics, events=events)
        return resume_run(request, hooks).exit_code
