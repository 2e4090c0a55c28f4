"""An instance's answer, as a shard runner sends it: its result line (``engine/results.py``),
its snapshot if it waits for people, its status and duration, and its error.

Encoding is where a run can still fail after the instance ended (a context or a human task's
form that is not JSON): such an instance is answered ``failed``, naming the human step or
``<output>``, and never takes its host down.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from shardflow._types import WorkflowStatus
from shardflow.engine.instance import Ending
from shardflow.engine.interpreter import Interpreter
from shardflow.engine.records import ErrorInfo
from shardflow.engine.results import Status, result_line
from shardflow.engine.rows import Answer, InputId
from shardflow.engine.runner import InstanceOutcome
from shardflow.model.tasks import HumanTask

_STATUS = {WorkflowStatus.COMPLETED: Status.COMPLETED, WorkflowStatus.FAILED: Status.FAILED,
           WorkflowStatus.WAITING: Status.WAITING, WorkflowStatus.CANCELLED: Status.CANCELLED}
_WAITING = WorkflowStatus.WAITING
_now = time.time


def answer_new(instance_id: InputId | None, attempt: int, interpreter: Interpreter,
               tasks: list[HumanTask], ending: Ending, payload: dict[str, Any],
               started: float) -> Answer:
    """What ``encode`` makes of the ending of a new instance, without building an outcome
    unless the instance parked (human tasks to report: the general encoder)."""
    duration = round((_now() - started) * 1000.0, 3)
    status, context, info = ending
    final = context.data if context is not None else payload
    if interpreter.parked:
        return encode(instance_id, attempt, InstanceOutcome(
            interpreter.instance_id, status, final, info, started, duration,
            interpreter.history, tasks,
            interpreter.to_snapshot() if status is _WAITING else None))
    code = Status.COMPLETED if info is None else Status.FAILED
    try:
        line = result_line(instance_id, code, final, None if info is None else info.to_dict(),
                           attempt, started, duration)
    except TypeError as exc:
        return failure_answer(instance_id, attempt, "<output>", exc, None, duration)
    return (code, duration, line, None, info)


def encode(instance_id: InputId | None, attempt: int, outcome: InstanceOutcome) -> Answer:
    """The result line (and snapshot) of ``outcome``; a value that cannot be encoded fails
    the instance, naming the human step or ``<output>``."""
    duration = round(outcome.duration_ms, 3)
    tasks = [t.to_dict() for t in outcome.tasks] if outcome.tasks else None
    snapshot = None
    if outcome.snapshot is not None:
        try:
            snapshot = orjson.dumps({"state": outcome.snapshot, "tasks": tasks})
        except TypeError as exc:
            return failure_answer(instance_id, attempt,
                                  _unencodable_task(outcome.tasks) or "<snapshot>", exc, outcome,
                                  duration)
    info = outcome.error
    error = info.to_dict() if info is not None else None
    status = _STATUS[outcome.status]
    try:
        line = result_line(instance_id, status, outcome.context, error, attempt,
                           outcome.started_at, duration, tasks)
    except TypeError as exc:
        return failure_answer(instance_id, attempt,
                              _unencodable_task(outcome.tasks) or "<output>", exc, None, duration)
    return (status, duration, line, snapshot, info)


def _unencodable_task(tasks: list[HumanTask]) -> str | None:
    """The step (``node`` or ``node/branch``) of the first task that is not JSON (its
    ``form_schema`` holds a set, a date ...), if any."""
    for task in tasks:
        try:
            orjson.dumps(task.to_dict())
        except TypeError:
            return task.node if task.step == task.node else f"{task.node}/{task.step}"
    return None


def failure_answer(instance_id: InputId | None, attempt: int, where: str, exc: BaseException,
                   outcome: InstanceOutcome | None, duration: float = 0.0) -> Answer:
    """A ``failed`` answer: the error names ``where`` and the exception type."""
    info = ErrorInfo.from_exception(where, exc)
    context = outcome.context if outcome is not None else None
    started = outcome.started_at if outcome is not None else time.time()
    line = result_line(instance_id, Status.FAILED, context, info.to_dict(), attempt,
                       started, duration)
    return (Status.FAILED, duration, line, None, info)
