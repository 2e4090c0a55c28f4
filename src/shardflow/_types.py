"""The lowercase status enums and id helpers shared by every layer."""

from __future__ import annotations

import os
from enum import StrEnum
from typing import Any, TypeAlias

JSON: TypeAlias = Any
"""A JSON value (dict, list, str, int, float, bool, None); checked at runtime by orjson."""


class _Cancelled(StrEnum):
    """A status enum whose ``CANCELLED`` is another name of ``CANCELED``: one member, valued
    ``"canceled"`` as in litestar-workflows (whose users' stored statuses and comparisons then
    hold unchanged), with ``"cancelled"`` (shardflow's spelling until issue 20, and asyncio's)
    still read back as it."""

    @classmethod
    def _missing_(cls, value: object) -> Any:
        return cls("canceled") if value == "cancelled" else None


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
    CANCELED = "canceled"
    CANCELLED = "canceled"


class StepStatus(_Cancelled):
    """What became of one execution of a step (a :class:`StepExecution`'s ``status``)."""

    PENDING = "pending"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    WAITING = "waiting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    CANCELLED = "canceled"
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
