"""Rate-limit specs (``"100/s"``, ``"6000/m burst 50"``) and the GCRA token schedule.

The schedule is pure arithmetic on a clock reading: it answers "when may the next start
happen", so a caller sleeps exactly until then instead of polling.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shardflow.errors import ConfigError

_UNITS = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "hour": 3600.0}
_SPEC = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*([a-z]+)\s*(?:burst\s+(\d+))?\s*$")


@dataclass(frozen=True, slots=True)
class RateSpec:
    """``count`` starts per ``per_seconds``, allowing ``burst`` back-to-back starts (>= 1)."""

    count: float
    per_seconds: float
    burst: int

    @property
    def per_second(self) -> float:
        return self.count / self.per_seconds

    def __str__(self) -> str:
        return f"{self.count:g}/{self.per_seconds:g}s burst {self.burst}"


def parse_rate(name: str, spec: str) -> RateSpec:
    """Parse ``"N/s"``, ``"N/m"`` or ``"N/h"`` with an optional ``burst B``."""
    match = _SPEC.match(spec.lower()) if isinstance(spec, str) else None
    if match is None or match.group(2) not in _UNITS:
        raise ConfigError(
            f"rate_limits.{name}", f"{spec!r} is not a rate; write e.g. '100/s', '600/m burst 20'"
        )
    count = float(match.group(1))
    if count <= 0:
        raise ConfigError(f"rate_limits.{name}", "the rate must be positive")
    burst = int(match.group(3)) if match.group(3) else 1
    return RateSpec(count, _UNITS[match.group(2)], max(burst, 1))


class RateSchedule:
    """Generic cell rate algorithm: each :meth:`reserve` books the next start time.

    Over any window of ``w`` seconds at most ``rate * w + burst`` reservations start.
    """

    __slots__ = ("_interval", "_tat", "_tolerance")

    def __init__(self, spec: RateSpec) -> None:
        self._interval = 1.0 / spec.per_second
        self._tolerance = (spec.burst - 1) * self._interval
        self._tat = float("-inf")

    def reserve(self, now: float) -> float:
        """Book a start and return how many seconds from ``now`` it may happen (0 = now)."""
        tat = max(self._tat, now)
        allowed_at = tat - self._tolerance
        self._tat = tat + self._interval
        return max(allowed_at - now, 0.0)
