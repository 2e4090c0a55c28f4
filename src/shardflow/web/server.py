"""Running the app: bind first (a busy port is one clear error), print the URL, serve.

Binding before uvicorn starts also makes ``--port 0`` useful: the printed URL has the port
the system chose. Uvicorn's access log is off because it would write the ``?token=`` URL of
every login to the terminal.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import replace

import uvicorn
from litestar import Litestar

from shardflow.errors import ConfigError
from shardflow.web.app import ServeConfig, create_app


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError("port", f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)
    return sock


def url(config: ServeConfig) -> str:
    host = f"[{config.host}]" if ":" in config.host else config.host
    query = f"?token={config.token}" if config.token else ""
    return f"http://{host}:{config.port}/{query}"


def serve(config: ServeConfig, announce: Callable[[str], None]) -> None:
    """Serve until interrupted; ``announce`` prints the start-up lines."""
    with bind(config.host, config.port) as sock:
        config = replace(config, port=sock.getsockname()[1])
        app: Litestar = create_app(config)
        announce(f"shardflow inbox for {config.user}, runs: {', '.join(app.state.runs)}")
        announce(f"open {url(config)}")
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                               lifespan="on"))
        server.run(sockets=[sock])
