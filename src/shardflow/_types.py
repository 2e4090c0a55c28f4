"""The lowercase status enums and id helpers shared by every layer."""

from __future__ import annotations

import os
from enum import StrEnum
from typing import Any, TypeAlias

JSON: TypeAlias = Any
"""A JSON value (dict, list, str, int, float, bool, None); checked at runtime by orjson."""


class _Cancelled(StrEnum):
    """A status enum whose ``CANCELED`` (litestar-workflows' spelling) is another name of
    ``CANCELLED``: one member, stored as ``"cancelled"``, and ``"canceled"`` read back as it,
    so statuses written by litestar-workflows code still parse."""

    @classmethod
    def _missing_(cls, value: object) -> Any:
        return cls("cancelled") if value == "canceled" else None


class WorkflowStatus(_Cancelled):
    """Lifecycle of a workflow instance. Values are persisted, so they are spelled out.

    ``PAUSED`` is litestar-workflows' status of an instance held by an operator; shardflow
    has no pause yet, so no instance is ever in it (docs/PORTING.md)."""

    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    WAITING = "waiting"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    CANCELED = "cancelled"


class StepStatus(_Cancelled):
    """What became of one execution of a step (a :class:`StepExecution`'s ``status``)."""

    PENDING = "pending"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    WAITING = "waiting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    CANCELED = "cancelled"
    SKIPPED = "skipped"


class StepType(StrEnum):
    """What kind of work a step is: the engine runs machine steps, people complete human
    steps, an external callback completes a webhook, time completes a timer, and a gateway
    only chooses where the path goes."""

    MACHINE = "machine"
    HUMAN = "human"
    WEBHOOK = "webhook"
    TIMER = "timer"
    GATEWAY = "gateway"


def new_id() -> str:
    """A random 128-bit hex id: unique across processes without coordination."""
    return os.urandom(16).hex()
