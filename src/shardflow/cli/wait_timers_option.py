"""``--wait-timers DURATION`` of ``run`` and ``resume``: how long a run that has nothing else
to do waits for its next parked timer (``run/timer_watch.py``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

import click

from shardflow.cli.conventions import option
from shardflow.run.timer_watch import DEFAULT_WAIT_SECONDS

F = TypeVar("F", bound=Callable[..., Any])

_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([smhd]?)\s*", re.IGNORECASE)


class Duration(click.ParamType[float]):
    """Seconds, or a number with a unit: ``90``, ``90s``, ``5m``, ``2h``, ``1d``."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        if isinstance(value, int | float):
            return float(value)
        found = _DURATION.fullmatch(str(value))
        if found is None:
            self.fail(f"{value!r} is not a duration: give seconds or a number with s, m, h "
                      "or d (90, 5m, 2h)", param, ctx)
        return float(found.group(1)) * _UNITS[found.group(2).lower()]


def wait_timers_option(command: F) -> F:
    return option(
        "--wait-timers", type=Duration(), metavar="DURATION", default=DEFAULT_WAIT_SECONDS,
        show_default="5m",
        help="Once nothing else is left to do, wait this long at most for the next parked "
             "timer (90, 5m, 2h; 0: do not wait). Timers due later stay parked: the run "
             "exits 75 and 'shardflow resume' continues them once due.")(command)
