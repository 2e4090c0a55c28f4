"""The ASGI app: API, page and OpenAPI schema behind the access guard and CSRF protection."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from litestar import Litestar, get
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import ResponseHeader, State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.response import File
from litestar.static_files import create_static_files_router

from shardflow.web.api import Services, api_router
from shardflow.web.errors import EXCEPTION_HANDLERS
from shardflow.web.guard import LOOPBACK_NAMES, AccessGuard
from shardflow.web.inbox import Inbox
from shardflow.web.resumer import Resumer, resume_command
from shardflow.web.runs import RunTable

STATIC = Path(str(files("shardflow.web") / "static"))
MAX_BODY_BYTES = 256 * 1024
"""Form data is small; anything larger is a mistake or an attack (413)."""

CSRF_HEADER = "x-csrftoken"
SECURITY_HEADERS = [
    # The page loads only its own files, cannot be framed (clickjacking) and sends no Referer.
    ResponseHeader(name="Content-Security-Policy",
                   value="default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"),
    ResponseHeader(name="X-Frame-Options", value="DENY"),
    ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
    ResponseHeader(name="Referrer-Policy", value="no-referrer"),
]


@dataclass(frozen=True, slots=True)
class ServeConfig:
    """What ``shardflow tasks serve`` was asked for. ``token=None`` means ``--no-token``;
    ``port`` names the cookies, so servers on two ports of one host keep theirs apart."""

    run_dirs: tuple[Path, ...]
    user: str
    token: str | None
    host: str = "127.0.0.1"
    port: int = 8765
    assignee_only: bool = False
    auto_resume: bool = False


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_NAMES or host.startswith("127.")


@get("/", include_in_schema=False)
async def index() -> File:
    return File(STATIC / "index.html", content_disposition_type="inline", media_type="text/html")


def create_app(config: ServeConfig, resumer: Resumer | None = None) -> Litestar:
    """The app for ``config``; a :class:`ConfigError` when a run directory has no tasks."""
    runs = RunTable(config.run_dirs)
    csrf_cookie = f"shardflow_csrf_{config.port}"
    services = Services(
        inbox=Inbox(runs, user=config.user, assignee_only=config.assignee_only),
        resumer=resumer or Resumer(resume_command), auto_resume=config.auto_resume,
        csrf_cookie=csrf_cookie, csrf_header=CSRF_HEADER)
    hosts = LOOPBACK_NAMES | {config.host} if is_loopback(config.host) else None
    guard = AccessGuard(config.token, f"shardflow_token_{config.port}", hosts)
    return Litestar(
        route_handlers=[index, api_router(),
                        create_static_files_router(path="/static", directories=[STATIC])],
        dependencies={"services": Provide(lambda: services, use_cache=True, sync_to_thread=False)},
        middleware=[guard],
        csrf_config=CSRFConfig(secret=secrets.token_hex(32), cookie_name=csrf_cookie,
                               header_name=CSRF_HEADER, cookie_samesite="strict"),
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=MAX_BODY_BYTES,
        response_headers=SECURITY_HEADERS,
        openapi_config=OpenAPIConfig(title="shardflow inbox", version="1",
                                     path="/api/schema", render_plugins=[JsonRenderPlugin()]),
        on_shutdown=[services.resumer.aclose],
        state=State({"runs": runs.names()}),
        debug=False,
    )
