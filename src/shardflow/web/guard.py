"""Who may talk to the server, and what a request may carry, decided before routing.

The guard wraps the whole app (outside Litestar's router), so a request without the token gets
401 whatever its path or method: routes cannot be probed. In order, it checks:

* the Host header (on a loopback server): defeats DNS rebinding, where a page on another site
  makes its name resolve to 127.0.0.1 but still sends its own name as Host;
* the access token, as ``Authorization: Bearer TOKEN``. Cookies are not used at all: browsers
  ignore ports for cookies, so a page or server on any other local port would receive or read
  them. The page keeps the token in ``localStorage``, which is private to its origin (port
  included). Only the page's own static files (the same for everyone, no data) are served
  without it, so the printed ``/?token=...`` URL can load the page that stores the token;
* for state-changing methods, the origin: ``Origin`` must be this server's own origin, or,
  without ``Origin``, ``Sec-Fetch-Site`` must be ``same-origin``. Scripts send ``Origin``
  too (``curl -H 'Origin: http://127.0.0.1:8765'``): a request that proves nothing about
  where it comes from changes nothing;
* the body: only ``application/json`` (no token or data is ever read from a form body), at
  most :data:`MAX_BODY_BYTES`, nested at most :data:`~shardflow.jsonvalue.MAX_DEPTH` deep.

Every response, the guard's own included, carries :data:`SECURITY_HEADERS`.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import socket
from collections.abc import Iterable
from typing import Any, cast
from urllib.parse import parse_qsl

import orjson
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from shardflow.jsonvalue import MAX_DEPTH

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
MAX_BODY_BYTES = 256 * 1024
"""Form data is small; anything larger is a mistake or an attack (413)."""
PUBLIC_FILES = frozenset({"/", "/static/app.js", "/static/form.js", "/static/style.css"})
"""The page itself: the same files for everyone, served without the token."""
SAFE_METHODS = frozenset({"GET", "HEAD"})
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    # The page loads only its own files, cannot be framed (clickjacking), sends no Referer
    # (the first URL holds the token) and no response is cached.
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"cross-origin-resource-policy", b"same-origin"),
)
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")


def host_name(header: str) -> str:
    """``host[:port]`` or ``[v6]:port`` -> the name alone, lowercase."""
    if header.startswith("["):
        return header[1:].split("]", 1)[0].lower()
    return header.rsplit(":", 1)[0].lower() if header.count(":") == 1 else header.lower()


def is_loopback(host: str) -> bool:
    """Whether every address ``host`` resolves to is a loopback address (a name that does not
    resolve is not loopback: ``127.attacker.example`` is a name, not an address)."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return False
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(
        ipaddress.ip_address(str(a).split("%", 1)[0]).is_loopback for a in addresses)


def nesting_depth(body: bytes) -> int:
    """How many containers deep the JSON text ``body`` nests (brackets inside strings aside);
    counted on the text, so no parser has to recurse into it first."""
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_JSON_STRING.sub(b"", body)):
        if bracket in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _media_type(header: str) -> str:
    return header.split(";", 1)[0].strip().lower()


class Refusal(Exception):
    """A request the guard answers itself (``status``, ``detail``)."""

    def __init__(self, status: int, detail: str) -> None:
        self.status = status
        self.detail = detail
        super().__init__(detail)


def _secured(send: Send) -> Send:
    async def send_secured(message: Message) -> None:
        if message["type"] == "http.response.start":
            present = {k.lower() for k, _ in message.get("headers", [])}
            extra = [(k, v) for k, v in SECURITY_HEADERS if k not in present]
            message = cast("Message", {**message, "headers": [*message.get("headers", []), *extra]})
        await send(message)
    return send_secured


async def _refuse(send: Send, status: int, detail: str) -> None:
    body = orjson.dumps({"status_code": status, "detail": detail})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="shardflow inbox"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = cast("dict[str, Any]", await receive())
        if message["type"] == "http.disconnect":
            raise Refusal(400, "the client went away before its body arrived")
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise Refusal(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the app the body already read, then the client's messages."""
    sent = False

    async def replay() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()
    return replay


class AccessGuard:
    """The ASGI app in front of the inbox app (see the module's docstring for the rules)."""

    def __init__(self, app: ASGIApp, token: str | None, hosts: Iterable[str] | None) -> None:
        self.app = app
        self.token = token
        self.hosts = frozenset(hosts) if hosts is not None else None

    def _valid(self, candidate: str | None) -> bool:
        return (candidate is not None and self.token is not None
                and secrets.compare_digest(candidate.encode(), self.token.encode()))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        send = _secured(send)
        if scope["type"] != ScopeType.HTTP:  # the inbox has no websockets
            await send(cast("Message", {"type": "websocket.close", "code": 1008}))
            return
        try:
            receive = await self._check(scope, receive)
        except Refusal as refusal:
            await _refuse(send, refusal.status, refusal.detail)
            return
        await self.app(scope, receive, send)

    async def _check(self, scope: Scope, receive: Receive) -> Receive:
        """Refuse the request (:class:`Refusal`) or return the ``receive`` to serve it with."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        if self.hosts is not None and host_name(host) not in self.hosts:
            raise Refusal(400, f"Host {host!r} is not served here; use one of "
                               f"{', '.join(sorted(self.hosts))}")
        method = str(scope.get("method", "GET"))
        self._check_token(scope, headers, method)
        if method in SAFE_METHODS:
            return receive
        self._check_origin(headers, host)
        return _replay(await self._json_body(headers, receive), receive)

    def _check_token(self, scope: Scope, headers: dict[str, str], method: str) -> None:
        if self.token is None:
            return
        if method in SAFE_METHODS and scope["path"] in PUBLIC_FILES:
            query = parse_qsl(scope.get("query_string", b"").decode("latin-1"))
            given = [value for key, value in query if key == "token"]
            if given and not self._valid(given[-1]):
                raise Refusal(401, "the access token in the URL is wrong; open the URL "
                                   "'shardflow tasks serve' printed")
            return
        bearer = headers.get("authorization", "")
        if bearer[:7].lower() == "bearer " and self._valid(bearer[7:].strip()):
            return
        raise Refusal(401, "an access token is required: open the URL with ?token= that "
                           "'shardflow tasks serve' printed, or send 'Authorization: Bearer "
                           "TOKEN'")

    @staticmethod
    def _check_origin(headers: dict[str, str], host: str) -> None:
        origin = headers.get("origin")
        if origin is not None:
            if origin != f"http://{host}":
                raise Refusal(403, f"cross-origin request refused: Origin {origin!r} is not "
                                   f"this server (http://{host})")
            return
        site = headers.get("sec-fetch-site")
        if site != "same-origin":
            raise Refusal(403, f"a request that changes something must send 'Origin: "
                               f"http://{host}' (or 'Sec-Fetch-Site: same-origin'); "
                               + (f"got Sec-Fetch-Site: {site}" if site else "it sent neither"))

    @staticmethod
    async def _json_body(headers: dict[str, str], receive: Receive) -> bytes:
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise Refusal(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
        body = await _read_body(receive)
        kind = headers.get("content-type")
        if kind is not None and _media_type(kind) != "application/json":
            raise Refusal(415, f"only application/json bodies are accepted, not {kind!r}")
        if body and kind is None:
            raise Refusal(415, "a body needs 'Content-Type: application/json'")
        depth = nesting_depth(body)
        if depth > MAX_DEPTH:
            raise Refusal(400, f"the JSON body nests {depth} levels deep; at most {MAX_DEPTH} "
                               "are accepted")
        return body


def guarded(app: Any, token: str | None, hosts: Iterable[str] | None) -> None:
    """Put an :class:`AccessGuard` in front of a Litestar ``app``'s router, in place."""
    app.asgi_handler = AccessGuard(app.asgi_handler, token, hosts)
