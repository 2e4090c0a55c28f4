"""Errors as responses: one clear 4xx naming the problem, never a traceback.

Litestar's own errors (unknown route 404, 405, oversized body 413, bad query parameters and
undecodable JSON 400) keep its ``{"status_code", "detail"}`` shape; ours use the same shape
and add what a client needs (``violations`` with JSON pointers, who took a task).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from litestar import Request, Response
from litestar.types import ExceptionHandlersMap

from shardflow.errors import ShardflowError, TaskNotFoundError
from shardflow.store.tasks import TaskStoreError
from shardflow.web.inbox import InvalidFormError, NotAssignedError, TakenError
from shardflow.web.resumer import ResumeRunningError
from shardflow.web.runs import UnknownRunError


def _response(status: int, detail: str, **extra: Any) -> Response[dict[str, Any]]:
    return Response({"status_code": status, "detail": detail, **extra}, status_code=status)


def _status(code: int) -> Callable[[Request[Any, Any, Any], Exception], Response[dict[str, Any]]]:
    def handler(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
        return _response(code, str(exc))
    return handler


def _invalid(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    assert isinstance(exc, InvalidFormError)
    return _response(422, str(exc), violations=[v.to_dict() for v in exc.violations])


def _taken(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    assert isinstance(exc, TakenError)
    return _response(409, str(exc), completed_by=exc.task.completed_by,
                     completed_at=exc.task.completed_at)


def _database(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    return _response(503, f"the run's tasks.db cannot be read: {exc}")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    InvalidFormError: _invalid,
    TakenError: _taken,
    UnknownRunError: _status(404),
    TaskNotFoundError: _status(404),
    NotAssignedError: _status(403),
    ResumeRunningError: _status(409),
    TaskStoreError: _database,  # before ShardflowError: a damaged tasks.db is not a bad request
    ShardflowError: _status(400),
    sqlite3.DatabaseError: _database,
}
