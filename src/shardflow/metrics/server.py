"""``/metrics`` and ``/healthz`` over HTTP, in a thread of their own.

A thread rather than the event loop: a scrape is answered even while the loop is busy with a
large batch, and the same server serves ``shardflow run`` (whose loop the coordinator owns).
``/healthz`` asks the process's health check each time: 200 ``ok``, or 503 with the reason.
"""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from shardflow.metrics.registry import CONTENT_TYPE, HealthCheck, Metrics

_log = logging.getLogger("shardflow")


class MetricsServer:
    """Serves ``metrics`` and ``health`` on ``host:port`` until :meth:`close`."""

    def __init__(self, metrics: Metrics, health: HealthCheck, port: int,
                 host: str = "0.0.0.0") -> None:
        handler = type("Handler", (_Handler,), {"metrics": metrics, "health": staticmethod(health)})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="shardflow-metrics",
                                        daemon=True)

    def start(self) -> MetricsServer:
        self._thread.start()
        _log.info("metrics on http://%s:%d/metrics, health on /healthz",
                  self._server.server_address[0], self.port)
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _Handler(BaseHTTPRequestHandler):
    metrics: Metrics
    health: HealthCheck

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._reply(200, self.metrics.render(), CONTENT_TYPE)
        elif path == "/healthz":
            problem = self.health()
            self._reply(200 if problem is None else 503, (problem or "ok").encode() + b"\n")
        else:
            self._reply(404, b"not found: try /metrics or /healthz\n")

    def _reply(self, code: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not news: no line per request."""
