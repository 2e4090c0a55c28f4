"""Who may talk to the server: the Host check and the access token, before anything else runs.

Like Jupyter, the server prints a URL with ``?token=...``; opening it sets an HttpOnly,
SameSite=Strict cookie and redirects to the same page without the token (so it does not stay
in the address bar or the history). Scripts send ``Authorization: Bearer TOKEN`` instead.
The Host check defeats DNS rebinding on a loopback server: a page on another site that makes
its name resolve to 127.0.0.1 still sends its own name as Host, and is refused.
"""

from __future__ import annotations

import secrets
from http.cookies import CookieError, SimpleCookie
from typing import cast
from urllib.parse import parse_qsl, urlencode

import orjson
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    HTTPScope,
    Receive,
    Scope,
    Send,
)

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})


def host_name(header: str) -> str:
    """``host[:port]`` or ``[v6]:port`` -> the name alone, lowercase."""
    if header.startswith("["):
        return header[1:].split("]", 1)[0].lower()
    return header.rsplit(":", 1)[0].lower() if header.count(":") == 1 else header.lower()


async def _reply(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    start: HTTPResponseStartEvent = {
        "type": "http.response.start", "status": status,
        "headers": [(b"content-length", str(len(body)).encode()), *headers]}
    end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": False}
    await send(start)
    await send(end)


async def _refuse(send: Send, status: int, detail: str) -> None:
    body = orjson.dumps({"status_code": status, "detail": detail})
    await _reply(send, status, body, [(b"content-type", b"application/json")])


class AccessGuard(ASGIMiddleware):
    """Refuses requests with a foreign Host header (when ``hosts`` is given) or without the
    token (when ``token`` is given), and turns ``?token=`` into the session cookie."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, token: str | None, cookie_name: str, hosts: frozenset[str] | None) -> None:
        self.token = token
        self.cookie_name = cookie_name
        self.hosts = hosts

    def _valid(self, candidate: str | None) -> bool:
        return (candidate is not None and self.token is not None
                and secrets.compare_digest(candidate.encode(), self.token.encode()))

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if self.hosts is not None and host_name(headers.get("host", "")) not in self.hosts:
            await _refuse(send, 400, f"Host {headers.get('host', '')!r} is not served here; "
                                     f"use one of {', '.join(sorted(self.hosts))}")
            return
        if self.token is None:
            await next_app(scope, receive, send)
            return
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"))
        given = [value for key, value in query if key == "token"]
        if given and cast("HTTPScope", scope)["method"] in ("GET", "HEAD"):
            if not self._valid(given[-1]):
                await _refuse(send, 401, "the access token in the URL is wrong; open the URL "
                                         "'shardflow tasks serve' printed")
                return
            rest = urlencode([(k, v) for k, v in query if k != "token"])
            location = scope["path"] + (f"?{rest}" if rest else "")
            cookie = f"{self.cookie_name}={self.token}; HttpOnly; SameSite=Strict; Path=/"
            await _reply(send, 303, b"", [(b"location", location.encode()),
                                          (b"set-cookie", cookie.encode())])
            return
        bearer = headers.get("authorization", "")
        if bearer.lower().startswith("bearer ") and self._valid(bearer[7:].strip()):
            await next_app(scope, receive, send)
            return
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(headers.get("cookie", ""))
        except CookieError:  # a malformed Cookie header is just no cookie
            jar.clear()
        morsel = jar.get(self.cookie_name)
        if self._valid(morsel.value if morsel is not None else None):
            await next_app(scope, receive, send)
            return
        await _refuse(send, 401, "an access token is required: open the URL with ?token= that "
                                 "'shardflow tasks serve' printed, or send 'Authorization: "
                                 "Bearer TOKEN'")
