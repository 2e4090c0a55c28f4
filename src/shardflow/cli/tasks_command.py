"""``shardflow tasks``: list, show and complete the human tasks of batch runs."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import orjson

from shardflow.cli.conventions import SuggestingGroup, logging_options, sub_option
from shardflow.engine.forms import form_violations
from shardflow.errors import (
    ConfigError,
    TaskAlreadyCompletedError,
    TaskNotFoundError,
    TaskValidationError,
)
from shardflow.model.tasks import HUMAN, TASK_KINDS, HumanTask, wanted_kinds
from shardflow.run.rundir import latest_run_dirs
from shardflow.store.tasks import SQLiteTaskStore


def _store(run_dir: str | None) -> SQLiteTaskStore:
    if run_dir is not None:
        path = Path(run_dir) / "tasks.db"
        if not path.exists():
            raise ConfigError("run_dir", f"{run_dir} has no human tasks (no tasks.db)")
        return SQLiteTaskStore(path)
    for candidate in latest_run_dirs():
        if (candidate / "tasks.db").exists():
            return SQLiteTaskStore(candidate / "tasks.db")
    raise ConfigError("run_dir", "no run with human tasks under .shardflow/runs; pass RUN_DIR")


def _find(task_id: str, run_dir: str | None) -> tuple[SQLiteTaskStore, HumanTask]:
    """The store holding ``task_id``: the given run, else every run, newest first."""
    dirs = [Path(run_dir)] if run_dir else latest_run_dirs()
    for candidate in dirs:
        if (candidate / "tasks.db").exists():
            store = SQLiteTaskStore(candidate / "tasks.db")
            try:
                return store, store.get_task(task_id)
            except TaskNotFoundError:
                store.close()
    raise TaskNotFoundError(task_id)


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M") if ts else "-"


@click.group(cls=SuggestingGroup)
def tasks() -> None:
    """Human tasks of batch runs: list, show, complete, serve (an inbox in the browser)."""


@tasks.command("list")
@click.argument("run_dir", required=False)
@sub_option("--assignee", default=None, help="Only tasks assigned to NAME.")
@sub_option("--all", "show_all", is_flag=True, help="Include completed tasks.")
@sub_option("--kind", "kinds", multiple=True, type=click.Choice([*TASK_KINDS, "all"]),
            default=(HUMAN,), show_default=True,
            help="Which tasks: human (people act), timer (parked timers, due when they fire), "
                 "webhook (waiting for a callback), or all. Repeatable.")
@sub_option("--json", "as_json", is_flag=True, help="Print JSON, one task per line.")
@logging_options
def list_tasks(run_dir: str | None, assignee: str | None, show_all: bool, kinds: tuple[str, ...],
               as_json: bool) -> None:
    """Open human tasks of RUN_DIR (default: the newest run with tasks); ``--kind`` lists
    timers and webhooks too."""
    store = _store(run_dir)
    wanted = wanted_kinds(kinds)
    found = store.list_tasks(assignee=assignee, open_only=not show_all, kinds=wanted)
    if as_json:
        for task in found:
            click.echo(orjson.dumps(task.to_dict()).decode())
        return
    if not found:
        what = "tasks" if wanted is None else " or ".join(wanted) + " tasks"
        click.echo(f"no open {what}" if not show_all else f"no {what}")
        return
    mixed = wanted is None or len(wanted) > 1
    click.echo(f"{'TASK':32}  {'INSTANCE':12}  {'STEP':20}  "
               + (f"{'KIND':7}  " if mixed else "")
               + f"{'ASSIGNEE':10}  {'DUE':16}  TITLE")
    for task in found:
        click.echo(f"{task.id:32}  {task.instance_id[:12]:12}  {task.step[:20]:20}  "
                   + (f"{task.kind:7}  " if mixed else "")
                   + f"{(task.assignee or '-')[:10]:10}  {_when(task.due_at):16}  {task.title}")


@tasks.command("show")
@click.argument("task_id")
@sub_option("--run-dir", default=None, help="The run holding the task (default: search).")
@logging_options
def show_task(task_id: str, run_dir: str | None) -> None:
    """Everything about one task, with its form schema."""
    _, task = _find(task_id, run_dir)
    click.echo(orjson.dumps(task.to_dict(), option=orjson.OPT_INDENT_2).decode())


def _read_data_file(path: str) -> str:
    try:
        return Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError("data_file", f"cannot read {path}: {reason}") from None


@tasks.command("complete")
@click.argument("task_id")
@sub_option("--data", "data_text", default=None, help="Form data as a JSON object.")
@sub_option("--data-file", default=None, help="Form data from a JSON file.")
@sub_option("--user", default=None, help="Who completes the task.")
@sub_option("--run-dir", default=None, help="The run holding the task (default: search).")
@logging_options
def complete_task(task_id: str, data_text: str | None, data_file: str | None, user: str | None,
                  run_dir: str | None) -> None:
    """Complete TASK_ID with form data (validated against its schema; exit 1 if invalid)."""
    data = _read_data(data_text, data_file)
    store, task = _find(task_id, run_dir)
    _complete(store, task, data, user)


@tasks.command("callback")
@click.argument("run_dir")
@click.argument("instance_id")
@click.argument("node")
@sub_option("--data", "data_text", default=None, help="The callback's data as a JSON object.")
@sub_option("--data-file", default=None, help="The callback's data from a JSON file.")
@sub_option("--user", default=None, help="Who delivers the callback.")
def callback(run_dir: str, instance_id: str, node: str, data_text: str | None,
             data_file: str | None, user: str | None) -> None:
    """Deliver the callback the webhook NODE of INSTANCE_ID waits for (its open task, found
    without knowing its id); ``shardflow resume RUN_DIR`` then continues the instance."""
    data = _read_data(data_text, data_file)
    store = _store(run_dir)
    found = [t for t in store.list_tasks() if str(t.instance_id) == instance_id and t.node == node]
    if not found:
        click.echo(f"shardflow: error: instance {instance_id!r} of {run_dir} has no open task "
                   f"at node {node!r}", err=True)
        sys.exit(1)
    _complete(store, found[0], data, user)


def _read_data(data_text: str | None, data_file: str | None) -> Any:
    if (data_text is None) == (data_file is None):
        raise click.UsageError("give exactly one of --data and --data-file")
    raw = data_text if data_text is not None else _read_data_file(str(data_file))
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise click.UsageError(f"form data is not JSON: {exc}") from None


def _complete(store: SQLiteTaskStore, task: HumanTask, data: Any, user: str | None) -> None:
    """Validate ``data`` against the task's schema and record it once (exit 1 otherwise)."""
    violations = form_violations(task.form_schema, data)
    if violations:
        click.echo(str(TaskValidationError(task.id, violations)), err=True)
        sys.exit(1)
    try:
        store.complete_task(task.id, data, user)
    except TaskAlreadyCompletedError as exc:
        click.echo(f"shardflow: error: {exc}", err=True)
        sys.exit(1)
    click.echo(f"completed task {task.id} ({task.step} of instance {task.instance_id})")


from shardflow.cli.serve_command import serve  # noqa: E402

tasks.add_command(serve)
