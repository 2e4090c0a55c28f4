"""The lowercase status enum and id helpers shared by every layer."""

from __future__ import annotations

import os
from enum import StrEnum
from typing import Any, TypeAlias

JSON: TypeAlias = Any
"""A JSON value (dict, list, str, int, float, bool, None); checked at runtime by orjson."""


class WorkflowStatus(StrEnum):
    """Lifecycle of a workflow instance. Values are persisted, so they are spelled out."""

    PENDING = "pending"
    RUNNING = "running"
    WAITING = "waiting"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


def new_id() -> str:
    """A random 128-bit hex id: unique across processes without coordination."""
    return os.urandom(16).hex()
