"""Ray's log lines through shardflow's logging, not raw on stderr.

Two kinds reach a driver: records of Ray's Python loggers (``ray.*``: the token notice, the
warnings of ``ray.init``), and the lines Ray's processes send it (``log_to_driver``: a shard
actor's prints, the raylet's notice of a dead worker, the GCS's). The first go to the
``shardflow.ray`` logger at their level; of the second, the shard actors' lines go to
``shardflow.worker`` at WARNING (as a worker process's lines do) and the lines of Ray's own
processes to ``shardflow.ray`` at DEBUG (``-v``): the pool says in its own line what a lost
actor means for the run. So ``-q`` quiets them, and they carry shardflow's prefix.

Lines Ray's C++ core writes straight to the driver's stderr (``rpc_client.h: Failed to
connect ...``) bypass Python and stay as they are.
"""

from __future__ import annotations

import logging
from typing import Any

_ray_log = logging.getLogger("shardflow.ray")
_worker_log = logging.getLogger("shardflow.worker")
_ROUTE = "shardflow_logs"


class _Forward(logging.Handler):
    """Hands each record of Ray's loggers to ``shardflow.ray``'s handlers."""

    def emit(self, record: logging.LogRecord) -> None:
        if _ray_log.isEnabledFor(record.levelno):
            _ray_log.handle(record)


def route_ray_loggers() -> None:
    """Before ``ray.init``: Ray's Python loggers go through ``shardflow.ray``."""
    ray_logger = logging.getLogger("ray")
    if not any(isinstance(h, _Forward) for h in ray_logger.handlers):
        ray_logger.handlers = [_Forward()]
    ray_logger.propagate = False


def route_process_lines() -> None:
    """After ``ray.init``: the lines Ray's processes send the driver go through logging
    instead of Ray's own printer."""
    from ray._private.ray_logging import global_worker_stdstream_dispatcher as dispatcher

    dispatcher.remove_handler("ray_print_logs")
    dispatcher.remove_handler(_ROUTE)
    dispatcher.add_handler(_ROUTE, log_process_lines)


def log_process_lines(data: dict[str, Any]) -> None:
    """One batch of lines of one Ray process (``pid``: a number for a worker, else the
    name of a Ray process such as ``raylet``)."""
    pid = data.get("pid")
    where = f"{data.get('ip', '?')} pid {pid}"
    worker = isinstance(pid, int) or (isinstance(pid, str) and pid.isdigit())
    for line in data.get("lines", []):
        if not line.strip():
            continue
        if worker:
            _worker_log.warning("ray actor (%s): %s", where, line)
        else:
            _ray_log.debug("ray %s (%s): %s", pid, data.get("ip", "?"), line)
