"""Retry delays: Prefect's ``retry_delay_seconds`` (a number or one per retry) with jitter."""

from __future__ import annotations

import random
from collections.abc import Sequence


def retry_delay(delays: float | Sequence[float], jitter: float | None, retry_number: int,
                rng: random.Random | None = None) -> float:
    """Seconds to wait before retry ``retry_number`` (1-based), given a step's
    ``retry_delay_seconds`` (``delays``) and ``retry_jitter_factor`` (``jitter``).

    A list gives one delay per retry (the last repeats); ``retry_jitter_factor`` f scales the
    delay by a uniform factor in ``[1 - f, 1 + f]`` so retries of many instances spread out.
    """
    if isinstance(delays, int | float):
        delay = float(delays)
    else:
        delay = float(delays[min(retry_number, len(delays)) - 1]) if delays else 0.0
    factor = jitter
    if factor and delay > 0:
        delay *= 1.0 + (rng or random).uniform(-factor, factor)
    return max(delay, 0.0)
