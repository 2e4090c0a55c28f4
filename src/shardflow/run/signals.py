"""SIGTERM as an exception, so a terminated run unwinds (journal closed, hint printed) and
exits 143 instead of dying wherever it was; SIGINT already raises ``KeyboardInterrupt``.
While the coordinator runs, its loop's own handlers win (a graceful stop)."""

from __future__ import annotations

import signal
from typing import Any


class Terminated(BaseException):
    """SIGTERM arrived outside the coordinator's handling (start-up, the end of a run)."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated


def terminate_by_exception() -> None:
    """Make SIGTERM raise :class:`Terminated` (again: a loop's handler resets it on removal)."""
    signal.signal(signal.SIGTERM, _raise_terminated)
