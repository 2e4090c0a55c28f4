"""The ASGI app: API, page and OpenAPI schema behind the access guard (``guard.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from litestar import Litestar, get
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.response import File
from litestar.static_files import create_static_files_router

from shardflow.web.api import Services, api_router
from shardflow.web.errors import EXCEPTION_HANDLERS
from shardflow.web.guard import LOOPBACK_NAMES, MAX_BODY_BYTES, guarded, is_loopback
from shardflow.web.inbox import Inbox
from shardflow.web.resumer import Resumer, resume_command
from shardflow.web.runs import RunTable
from shardflow.web.timer_alarm import TimerAlarm

STATIC = Path(str(files("shardflow.web") / "static"))

__all__ = ["ServeConfig", "create_app", "is_loopback"]


@dataclass(frozen=True, slots=True)
class ServeConfig:
    """What ``shardflow tasks serve`` was asked for. ``token=None`` means ``--no-token``."""

    run_dirs: tuple[Path, ...]
    user: str
    token: str | None
    host: str = "127.0.0.1"
    port: int = 8765
    assignee_only: bool = False
    auto_resume: bool = False


@get("/", include_in_schema=False)
async def index() -> File:
    return File(STATIC / "index.html", content_disposition_type="inline", media_type="text/html")


def create_app(config: ServeConfig, resumer: Resumer | None = None) -> Litestar:
    """The app for ``config``; a :class:`ConfigError` when a run directory has no tasks."""
    runs = RunTable(config.run_dirs)
    services = Services(
        inbox=Inbox(runs, user=config.user, assignee_only=config.assignee_only),
        resumer=resumer or Resumer(resume_command), auto_resume=config.auto_resume)
    alarm = TimerAlarm(runs, services.resumer) if config.auto_resume else None
    hosts = LOOPBACK_NAMES | {config.host} if is_loopback(config.host) else None
    app = Litestar(
        route_handlers=[index, api_router(),
                        create_static_files_router(path="/static", directories=[STATIC])],
        dependencies={"services": Provide(lambda: services, use_cache=True, sync_to_thread=False)},
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=MAX_BODY_BYTES,
        openapi_config=OpenAPIConfig(title="shardflow inbox", version="1",
                                     path="/api/schema", render_plugins=[JsonRenderPlugin()]),
        on_startup=[alarm.start] if alarm else [],
        on_shutdown=[*([alarm.aclose] if alarm else []), services.resumer.aclose],
        state=State({"runs": runs.names()}),
        debug=False,
    )
    guarded(app, config.token, hosts)
    return app
