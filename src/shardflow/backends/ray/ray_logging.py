"""Ray's log lines through shardflow's logging, not raw on stderr.

Three kinds reach a driver: records of Ray's Python loggers (``ray.*``: the token notice,
the warnings of ``ray.init``), the lines Ray's processes send it (``log_to_driver``: a shard
actor's prints, the GCS's), and the error messages the cluster publishes to the job (the
raylet's notice of a dead worker, an infeasible resource request). The first go to the
``shardflow.ray`` logger (warnings and errors at their level, the rest at DEBUG); of the
second, the shard actors' lines go to ``shardflow.worker`` at WARNING (as a worker
process's lines do) and the lines of Ray's own processes to ``shardflow.ray`` at DEBUG
(``-v``); the third to ``shardflow.ray`` at WARNING, except the dead worker's notice (DEBUG):
the pool says in its own line what a lost actor means for the run. So ``-q`` quiets them,
and they carry shardflow's prefix.

``ray.init(configure_logging=False)`` clears the ``ray`` logger's handlers, so the forwarder
is not one of them: it hangs above that logger, as its parent. Ray prints the published
error messages with a module function of its own (``print_to_stdstream``), not through its
dispatcher, so that function is replaced for the run.

Lines Ray's C++ core writes straight to the driver's stderr (``rpc_client.h: Failed to
connect ...``) bypass Python: while connecting (when they come) :class:`NativeLines` takes
them from the file descriptor; after that they stay as Ray writes them.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import sys
import threading
from collections.abc import Callable
from typing import Any

_ray_log = logging.getLogger("shardflow.ray")
_worker_log = logging.getLogger("shardflow.worker")
_ROUTE = "shardflow_logs"


class _Forward(logging.Handler):
    """Hands each record of Ray's loggers to ``shardflow.ray``'s handlers: warnings and
    errors at their level, the rest (``Connecting to existing Ray cluster ...``) at DEBUG,
    so a run's default output holds shardflow's notices only."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno < logging.WARNING:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        if _ray_log.isEnabledFor(record.levelno):
            _ray_log.handle(record)


_BRIDGE = logging.Logger("shardflow.ray-bridge")
"""The ``ray`` logger's parent once routed: not registered with :mod:`logging`, so nothing
else logs to it or configures it; its one handler forwards to ``shardflow.ray``."""
_BRIDGE.addHandler(_Forward())
_BRIDGE.propagate = False


def route_ray_loggers() -> None:
    """Before ``ray.init``: Ray's Python loggers go through ``shardflow.ray`` (records
    propagate from ``ray`` to the bridge, whatever Ray does to its handlers)."""
    ray_logger = logging.getLogger("ray")
    ray_logger.handlers = [h for h in ray_logger.handlers if not isinstance(h, _Forward)]
    ray_logger.parent = _BRIDGE
    ray_logger.propagate = True


def route_process_lines() -> None:
    """After ``ray.init``: the lines Ray's processes send the driver go through logging
    instead of Ray's own printer."""
    from ray._private.ray_logging import global_worker_stdstream_dispatcher as dispatcher

    dispatcher.remove_handler("ray_print_logs")
    dispatcher.remove_handler(_ROUTE)
    dispatcher.add_handler(_ROUTE, log_process_lines)
    worker_module = importlib.import_module("ray._private.worker")
    if hasattr(worker_module, "print_to_stdstream"):  # read at each call by its error listener
        setattr(worker_module, "print_to_stdstream", log_error_messages)  # noqa: B010


def log_error_messages(data: dict[str, Any], ignore_prefix: bool = False) -> None:
    """The error messages the cluster publishes to this job (``pid``: who, ``raylet``)."""
    for line in data.get("lines", []):
        if not line.strip():
            continue
        level = logging.DEBUG if _WORKER_DIED in line else logging.WARNING
        text = "\n  ".join(part.rstrip() for part in line.strip().splitlines())
        _ray_log.log(level, "ray %s: %s", data.get("pid", "?"), text)  # its lines indented


_WORKER_DIED = "A worker died or was killed while executing a task"


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


_GLOG = re.compile(rb"^\[\d{4}-\d\d-\d\d [\d:,.]+ ([IWEF]) \d+ \d+\] (.*)$")
_REFUSED = (b"Unauthenticated", b"InvalidAuthToken")


class NativeLines:
    """While ``ray.init`` runs, what Ray's C++ core writes to the process's stderr (fd 2) --
    ``Failed to connect to GCS ... within 5 seconds`` and the like, every few seconds while
    an address does not answer -- goes through ``shardflow.ray`` at DEBUG; other lines
    pass through unchanged. ``refused``: a line said the cluster refused our credentials
    (``on_refused`` is called then, from the reading thread).

    Only for the connect: taking fd 2 for the whole run would route a crash's last words
    through a thread that may not outlive it."""

    def __init__(self, on_refused: Callable[[], None] = lambda: None) -> None:
        self.refused = False
        self._on_refused = on_refused
        self._saved = -1
        self._pump: threading.Thread | None = None

    def __enter__(self) -> NativeLines:
        try:
            self._saved = os.dup(2)
            read_end, write_end = os.pipe()
        except OSError:
            return self
        os.dup2(write_end, 2)
        os.close(write_end)
        self._pump = threading.Thread(target=self._run, args=(read_end,), daemon=True,
                                      name="shardflow-ray-stderr")
        self._pump.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pump is None:
            return
        sys.stderr.flush()
        os.dup2(self._saved, 2)  # the pipe loses its last writer: the pump reads to its end
        self._pump.join(timeout=5.0)
        os.close(self._saved)

    def _run(self, read_end: int) -> None:
        pending = b""
        with os.fdopen(read_end, "rb", buffering=0) as pipe:
            while chunk := pipe.read(65536):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    self._line(line)
        if pending:
            self._line(pending)

    def _line(self, line: bytes) -> None:
        found = _GLOG.match(line)
        if found is None:
            os.write(self._saved, line + b"\n")
            return
        if not self.refused and any(word in line for word in _REFUSED):
            self.refused = True
            self._on_refused()  # Ray would retry for ~20 s more
        _ray_log.debug("ray core (%s): %s", found.group(1).decode(),
                       found.group(2).decode(errors="replace"))
