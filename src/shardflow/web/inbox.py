"""What the inbox may do, without HTTP: list, count, show and complete the tasks of the served
runs, and tell each run's resume state. Every method is blocking (SQLite) and opens its own
connection, so the API calls them on worker threads.

The store is the same ``tasks.db`` the CLI uses: completing a task is the store's conditional
UPDATE, so of two completions, from this server or from ``shardflow tasks complete``, exactly
one wins and the other gets :class:`~shardflow.errors.TaskAlreadyCompletedError`.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from shardflow.errors import ShardflowError, TaskAlreadyCompletedError, TaskNotFoundError
from shardflow.model.tasks import (
    HUMAN,
    TIMER,
    WEBHOOK,
    HumanTask,
    wanted_kinds,
)
from shardflow.web.runs import RunTable, ServedRun
from shardflow.web.violations import Violation, form_violations


class NotAssignedError(ShardflowError):
    """With ``--assignee-only``, a user acted on a task (or a list) that is not theirs."""

    def __init__(self, user: str, what: str) -> None:
        self.user = user
        super().__init__(f"{what} is not assigned to {user!r} (the server runs with --assignee-only)")


class InvalidFormError(ShardflowError):
    """Form data violates the task's schema; ``violations`` lists every one, with its pointer."""

    def __init__(self, task_id: str, violations: Sequence[Violation]) -> None:
        self.task_id = task_id
        self.violations = list(violations)
        super().__init__(f"data for human task {task_id!r} is invalid "
                         f"({len(self.violations)} problem(s)); the task stays open")


class TakenError(ShardflowError):
    """The task was completed before; ``task`` says by whom and when."""

    def __init__(self, task: HumanTask) -> None:
        self.task = task
        super().__init__(f"human task {task.id!r} was already completed"
                         f" by {task.completed_by or 'someone'}")


@dataclass(frozen=True, slots=True)
class TaskFilter:
    run: str | None = None
    node: str | None = None
    step: str | None = None
    assignee: str | None = None
    kinds: tuple[str, ...] | None = (HUMAN,)
    """Which kinds of task (``model/tasks.TASK_KINDS``; None: all). The inbox is for people:
    timers and webhooks are listed only when asked for."""


def task_kinds(given: str | None) -> tuple[str, ...] | None:
    """The kinds a ``kind`` query asks for: human when not given, None for ``all``, else the
    comma-separated kinds (``model/tasks.wanted_kinds``)."""
    if given is None:
        return (HUMAN,)
    return wanted_kinds([w.strip() for w in given.split(",") if w.strip()]) or (HUMAN,)


SUMMARY_CHARS = 200
"""A list row's summary is one line: longer ones end in an ellipsis."""


def _text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def summary(task: HumanTask) -> str:
    """One line that tells a task from its siblings: the title and the step's ``display``
    values (``"Approve order: Customer ACME, Amount 1200"``), else the instance."""
    shown = [f"{f['label']} {_text(f['value'])}" for f in task.display or []
             if not f.get("missing")]
    line = f"{task.title}: {', '.join(shown)}" if shown else \
        f"{task.title} (instance {task.instance_id})"
    line = " ".join(line.split())  # newlines in a value stay on one line
    return line if len(line) <= SUMMARY_CHARS else line[:SUMMARY_CHARS - 1] + "\u2026"


def task_summary(run: ServedRun, task: HumanTask) -> dict[str, Any]:
    return {"run": run.name, "id": task.id, "instance_id": task.instance_id, "node": task.node,
            "step": task.step, "title": task.title, "summary": summary(task),
            "assignee": task.assignee, "due_at": task.due_at, "created_at": task.created_at,
            "kind": task.kind}


def task_detail(run: ServedRun, task: HumanTask) -> dict[str, Any]:
    """Everything the task view shows: what the step chose to show the approver
    (``description``; ``display`` as ``{"label", "path", "value"}`` rows and ``context`` as
    label -> value), the form, and once completed, who completed it, when, with what data."""
    display = task.display or []
    return {**task_summary(run, task), "description": task.description,
            "display": display,
            "context": {f["label"]: f["value"] for f in display if not f.get("missing")},
            "form_schema": task.form_schema, "completed_at": task.completed_at,
            "completed_by": task.completed_by, "data": task.data}


class Inbox:
    def __init__(self, runs: RunTable, *, user: str, assignee_only: bool = False) -> None:
        self.runs = runs
        self.user = user
        self.assignee_only = assignee_only

    def _assignee(self, asked: str | None) -> str | None:
        if not self.assignee_only:
            return asked
        if asked is not None and asked != self.user:
            raise NotAssignedError(self.user, f"the list of {asked!r}")
        return self.user

    def _open_tasks(self, flt: TaskFilter) -> list[tuple[ServedRun, HumanTask]]:
        """Open tasks of the chosen runs, oldest first across runs."""
        assignee = self._assignee(flt.assignee)
        runs = [self.runs.get(flt.run)] if flt.run is not None else list(self.runs)
        per_run = []
        for run in runs:
            with run.store() as store:
                found = store.list_tasks(assignee=assignee, kinds=flt.kinds)
            per_run.append([(run, t) for t in found
                            if (flt.node is None or t.node == flt.node)
                            and (flt.step is None or t.step == flt.step)])
        return list(heapq.merge(*per_run, key=lambda pair: (pair[1].created_at, pair[1].id)))

    def list_tasks(self, flt: TaskFilter, offset: int, limit: int) -> dict[str, Any]:
        found = self._open_tasks(flt)
        page = found[offset:offset + limit]
        return {"total": len(found), "offset": offset, "limit": limit,
                "tasks": [task_summary(run, task) for run, task in page]}

    def counts(self, assignee: str | None) -> list[dict[str, Any]]:
        """Open tasks per run and per node/step, each group with its oldest task's time."""
        groups: dict[str, dict[tuple[str, str], dict[str, Any]]] = {r.name: {} for r in self.runs}
        for run, task in self._open_tasks(TaskFilter(assignee=assignee)):
            group = groups[run.name].setdefault(
                (task.node, task.step),
                {"node": task.node, "step": task.step, "open": 0, "oldest": task.created_at})
            group["open"] += 1
        return [{"run": name, "open": sum(g["open"] for g in nodes.values()),
                 "nodes": list(nodes.values())} for name, nodes in groups.items()]

    def task(self, run_name: str, task_id: str) -> dict[str, Any]:
        run = self.runs.get(run_name)
        with run.store() as store:
            task = store.get_task(task_id)
            if self.assignee_only and task.assignee != self.user:
                raise NotAssignedError(self.user, f"task {task_id!r}")
            return task_detail(run, task)

    def find(self, task_id: str) -> dict[str, Any]:
        """The task ``task_id`` of whichever served run holds it (ids are unique)."""
        for run in self.runs:
            with run.store() as store:
                try:
                    store.get_task(task_id)
                except TaskNotFoundError:
                    continue
            return self.task(run.name, task_id)
        raise TaskNotFoundError(task_id)

    def complete(self, run_name: str, task_id: str, data: Any) -> tuple[dict[str, Any], bool]:
        """Complete the task as this server's user; returns the task and whether its instance
        now has every task done (it can be resumed)."""
        run = self.runs.get(run_name)
        with run.store() as store:
            task = store.get_task(task_id)
            if self.assignee_only and task.assignee != self.user:
                raise NotAssignedError(self.user, f"task {task_id!r}")
            if task.completed:
                raise TakenError(task)
            violations = form_violations(task.form_schema, data)
            if violations:
                raise InvalidFormError(task_id, violations)
            try:
                done = store.complete_task(task_id, data, self.user)
            except TaskAlreadyCompletedError:
                raise TakenError(store.get_task(task_id)) from None
            waiting = store.get_waiting(task.instance_id)
            ready = waiting is not None and all(t.completed for t in waiting.tasks)
        return task_detail(run, done), ready

    def run_state(self, run_name: str) -> dict[str, Any]:
        run = self.runs.get(run_name)
        with run.store() as store:
            open_tasks = store.list_tasks()
            waiting = store.waiting_count()
            ready = len(store.ready_instances())
            next_timer = store.next_due(TIMER)
        kinds = Counter(t.kind for t in open_tasks)
        return {"name": run.name, "path": str(run.path), "open_tasks": kinds[HUMAN],
                "open_timers": kinds[TIMER], "next_timer_due": next_timer,
                "open_webhooks": kinds[WEBHOOK], "waiting_instances": waiting,
                "ready_instances": ready}
