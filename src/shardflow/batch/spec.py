"""WorkerSpec: everything a worker process needs, sent to it as JSON at start."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    target: str
    """Workflow reference, ``module:attribute`` or ``file.py:attribute``."""
    max_in_flight: int = 1000
    limits: dict[str, int] = field(default_factory=dict)
    rate_limits: dict[str, str] = field(default_factory=dict)
    heartbeat_seconds: float = 0.5
    hard_timeout: float | None = None
    """Seconds the worker's loop may be blocked before the worker reports and exits."""
    watchdog_file: str = ""
    gc_freeze: bool = True
    events: bool = False
    """Record each instance's lifecycle events and send them (EVENTS frames): only when
    someone listens, since instances then run interpreted."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorkerSpec:
        return cls(**data)
