"""When the engine cancels a step that runs past its ``timeout_seconds``."""

from __future__ import annotations

GRACE_BASE = 0.05
GRACE_SHARE = 0.02
GRACE_CAP = 1.0


def enforced_after(timeout_seconds: float) -> float:
    """Seconds after which the engine cancels a step declaring ``timeout_seconds``: the timeout
    plus a grace of 50 ms and 2 % of it, at most 1 s.

    Why a grace: a step may enforce its own deadline with the same value and handle it, as the
    guide's ``TimedFetch`` does (``asyncio.wait_for(..., timeout=self.timeout_seconds)`` and
    ``except asyncio.TimeoutError``). Were the engine's cancellation due at the same moment, it
    would win that tie, and the step's own handling would never run. The engine's timeout is
    the backstop for steps that do not stop by themselves.
    """
    return timeout_seconds + min(GRACE_CAP, GRACE_BASE + GRACE_SHARE * timeout_seconds)
