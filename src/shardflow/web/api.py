"""The JSON API: every route the page uses, documented in the OpenAPI schema.

Handlers are thin: they call :class:`~shardflow.web.inbox.Inbox` on a worker thread (SQLite
blocks) and the :class:`~shardflow.web.resumer.Resumer` on the event loop. Errors become
responses in ``errors.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Router, get, post
from litestar.di import NamedDependency
from litestar.params import Body, FromPath, FromQuery, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED

from shardflow.web.inbox import Inbox, TaskFilter, task_kinds
from shardflow.web.resumer import Resumer

MAX_PAGE = 500
MAX_WAIT_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Services:
    """What the handlers share, given to them by dependency injection."""

    inbox: Inbox
    resumer: Resumer
    auto_resume: bool


async def _run_state(services: Services, run: str) -> dict[str, Any]:
    state = await asyncio.to_thread(services.inbox.run_state, run)
    return {**state, "resume": services.resumer.state(run).to_dict()}


@get("/session", summary="Who this server acts as, and how")
async def session(services: NamedDependency[Services]) -> dict[str, Any]:
    inbox = services.inbox
    return {"user": inbox.user, "assignee_only": inbox.assignee_only,
            "auto_resume": services.auto_resume, "runs": inbox.runs.names()}


@get("/tasks", summary="Open tasks, oldest first, filtered and paginated")
async def list_tasks(
    services: NamedDependency[Services],
    run: FromQuery[str | None] = None,
    node: FromQuery[str | None] = None,
    step: FromQuery[str | None] = None,
    assignee: FromQuery[str | None] = None,
    kind: FromQuery[str | None] = None,
    offset: Annotated[int, QueryParameter(ge=0)] = 0,
    limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)] = 50,
) -> dict[str, Any]:
    """``kind``: human (the default: the tasks people act on), timer, webhook, a
    comma-separated list of them, or all."""
    flt = TaskFilter(run=run, node=node, step=step, assignee=assignee,
                     kinds=task_kinds(kind))
    return await asyncio.to_thread(services.inbox.list_tasks, flt, offset, limit)


@get("/inbox", summary="Open tasks counted per run and per node and step")
async def inbox_counts(services: NamedDependency[Services],
                       assignee: FromQuery[str | None] = None) -> dict[str, Any]:
    return {"runs": await asyncio.to_thread(services.inbox.counts, assignee)}


@get("/runs", summary="Every served run with its resume state")
async def list_runs(services: NamedDependency[Services]) -> dict[str, Any]:
    return {"runs": [await _run_state(services, name) for name in services.inbox.runs.names()]}


@get("/runs/{run:str}", summary="One run's resume state (wait=N: once no resume runs)")
async def show_run(
    services: NamedDependency[Services], run: FromPath[str],
    wait: Annotated[float, QueryParameter(ge=0, le=MAX_WAIT_SECONDS)] = 0.0,
) -> dict[str, Any]:
    services.inbox.runs.get(run)
    if wait:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await services.resumer.settled(run)
    return await _run_state(services, run)


@post("/runs/{run:str}/resume", status_code=HTTP_202_ACCEPTED,
      summary="Start 'shardflow resume' for the run (409 while this server's resume runs)")
async def resume_run(services: NamedDependency[Services], run: FromPath[str]) -> dict[str, Any]:
    path = services.inbox.runs.get(run).path
    await services.resumer.start(run, path)
    return await _run_state(services, run)


@get("/runs/{run:str}/tasks/{task_id:str}", summary="One task with its form schema")
async def show_task(services: NamedDependency[Services], run: FromPath[str],
                    task_id: FromPath[str]) -> dict[str, Any]:
    return await asyncio.to_thread(services.inbox.task, run, task_id)


@get("/tasks/{task_id:str}", summary="One task, whichever run holds it, with its form schema")
async def find_task(services: NamedDependency[Services], task_id: FromPath[str]) -> dict[str, Any]:
    return await asyncio.to_thread(services.inbox.find, task_id)


@post("/runs/{run:str}/tasks/{task_id:str}/complete", status_code=HTTP_200_OK,
      summary="Complete a task with form data (422 lists every violation; 409 if taken)")
async def complete_task(
    services: NamedDependency[Services], run: FromPath[str], task_id: FromPath[str],
    data: Annotated[Any, Body(title="form data", description="a JSON object matching the "
                              "task's form_schema")],
) -> dict[str, Any]:
    task, ready = await asyncio.to_thread(services.inbox.complete, run, task_id, data)
    resume = None
    if ready and services.auto_resume:
        path = services.inbox.runs.get(run).path
        resume = (await services.resumer.request(run, path)).to_dict()
    return {"task": task, "instance_ready": ready, "resume": resume}


def api_router() -> Router:
    return Router(path="/api", route_handlers=[
        session, list_tasks, inbox_counts, list_runs, show_run, resume_run, show_task,
        find_task, complete_task])
