"""stdlib ``logging`` for the command line: one handler on stderr, a level from
``-v``/``-q``/``--log-level``.

Everything shardflow says on stderr while it runs goes through the ``shardflow`` logger
(notices and the summary at INFO, warnings, errors), and so do the lines the workers write
(``shardflow.worker``, at WARNING): ``-q`` keeps only warnings and errors, ``-qq`` errors,
``-v`` adds debug messages. An application embedding shardflow configures logging its own way.
"""

from __future__ import annotations

import logging
import sys

LEVELS = ("debug", "info", "warning", "error", "critical")
DEFAULT_LEVEL = logging.INFO


class _Formatter(logging.Formatter):
    """``shardflow: message`` for INFO (the notices people read every run),
    ``shardflow: warning: message`` otherwise, like other command-line tools."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        if record.levelno == logging.INFO:
            return f"shardflow: {message}"
        return f"shardflow: {record.levelname.lower()}: {message}"


def level_for(verbose: int, quiet: int, log_level: str | None) -> int:
    """``--log-level`` if given, else INFO moved one level down per ``-v`` and up per ``-q``."""
    if log_level is not None:
        return int(getattr(logging, log_level.upper()))
    return max(logging.DEBUG, min(logging.CRITICAL, DEFAULT_LEVEL + 10 * (quiet - verbose)))


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a message comes: while the progress bar
    is on screen, rich puts its own stream there and prints each message above the bar
    (the interrupt warning no longer lands on the bar's line)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure(level: int) -> None:
    """Send the ``shardflow`` loggers to stderr at ``level`` (idempotent)."""
    logger = logging.getLogger("shardflow")
    handler = _CurrentStderr(sys.stderr)
    handler.setFormatter(_Formatter())
    logger.handlers = [handler]
    logger.setLevel(level)
    logger.propagate = False
