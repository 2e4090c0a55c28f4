"""``--metrics-port`` / ``--metrics-host``: the same two options for ``run`` and ``consume``,
and the server they start (``/metrics``, ``/healthz``; needs ``shardflow[redis]``, which
brings ``prometheus-client``)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import click

from shardflow.cli.conventions import option
from shardflow.errors import ConfigError

if TYPE_CHECKING:
    from shardflow.metrics.registry import HealthCheck, Metrics

F = TypeVar("F", bound=Callable[..., Any])


def metrics_options(command: F) -> F:
    command = option("--metrics-host", metavar="HOST", default="0.0.0.0",
                     help="Address the metrics server binds.")(command)
    return option("--metrics-port", type=click.IntRange(min=0, max=65535), metavar="PORT",
                  default=None, help="Serve /metrics (Prometheus) and /healthz on this port.")(command)


def require_redis_extra() -> None:
    """One clear line when ``shardflow[redis]`` (redis-py, prometheus-client) is missing."""
    try:
        import prometheus_client  # noqa: F401
        import redis  # noqa: F401
    except ImportError as exc:
        raise ConfigError("extras", f"{exc.name} is not installed: pip install 'shardflow[redis]'") from None


@contextlib.contextmanager
def serving_metrics(port: int | None, host: str, metrics: Metrics | None = None,
                    health: HealthCheck | None = None) -> Iterator[Metrics | None]:
    """``metrics`` (new ones by default), served on ``port`` while the block runs; ``None``
    and nothing served without a port. ``/healthz`` asks ``health``, by default the
    workers' health (:meth:`Metrics.workers_health`)."""
    if port is None:
        yield metrics
        return
    require_redis_extra()
    from shardflow.metrics.registry import Metrics
    from shardflow.metrics.server import MetricsServer

    metrics = metrics or Metrics()
    server = MetricsServer(metrics, health or metrics.workers_health, port, host).start()
    try:
        yield metrics
    finally:
        server.close()
