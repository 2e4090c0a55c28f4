"""Retry delays: Prefect's ``retry_delay_seconds`` (a number or one per retry) with jitter."""

from __future__ import annotations

import random

from shardflow.model.steps import BaseStep


def retry_delay(step: BaseStep, retry_number: int, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry ``retry_number`` (1-based) of ``step``.

    A list gives one delay per retry (the last repeats); ``retry_jitter_factor`` f scales the
    delay by a uniform factor in ``[1 - f, 1 + f]`` so retries of many instances spread out.
    """
    delays = step.retry_delay_seconds
    if isinstance(delays, list | tuple):
        delay = float(delays[min(retry_number, len(delays)) - 1]) if delays else 0.0
    else:
        delay = float(delays)
    factor = step.retry_jitter_factor
    if factor and delay > 0:
        delay *= 1.0 + (rng or random).uniform(-factor, factor)
    return max(delay, 0.0)
