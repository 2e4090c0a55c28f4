"""RunOutcome: what one coordinator session did, and why it ended early if it did."""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Any

from shardflow.batch.stats import RunStats


@dataclass(frozen=True, slots=True)
class RunIOError:
    """A write that failed and ended the run: which file, and the error (an ``OSError``
    such as EPIPE, ENOSPC, EFBIG, EIO, or the task store's own error)."""

    path: str
    error: Exception

    @property
    def errno_name(self) -> str | None:
        """``"EPIPE"``, ``"ENOSPC"`` ... when the error carries an errno."""
        code = getattr(self.error, "errno", None)
        return errno.errorcode.get(code) if isinstance(code, int) else None

    @property
    def broken_pipe(self) -> bool:
        """The reader of the output went away (``| head``): not a failure of the run."""
        return isinstance(self.error, BrokenPipeError)

    def __str__(self) -> str:
        name = self.errno_name
        reason = getattr(self.error, "strerror", None) or str(self.error)
        return f"{self.path}: {f'{name}: ' if name else ''}{reason}"


@dataclass(slots=True)
class RunOutcome:
    stats: RunStats
    restarts: int
    worker_cpu_seconds: float
    hard_timeouts: int = 0
    limits: dict[str, Any] | None = None
    interrupted: bool = False
    resumed_finished: int = 0
    """Waiting instances of an earlier session that this one brought to an end."""
    output_error: RunIOError | None = None
    """Writing the output failed: input reading stopped, instances in flight finished into
    the journal, nothing more was written to the output. The run can be resumed."""
    journal_error: RunIOError | None = None
    """Writing the journal (or the task store) failed: dispatch stopped at once; what was
    journalled before stays, the rest runs again on resume."""
    start_failures: int = 0
    """Workers that died during start-up and were replaced."""

    def render(self) -> str:
        """The end-of-run summary for stderr."""
        lines = [self.stats.render()]
        if self.restarts:
            lines.append(f"  worker restarts: {self.restarts} ({self.hard_timeouts} hard timeouts)")
        for name, lim in (self.limits or {}).get("limits", {}).items():
            lines.append(f"  limit {name}: size {lim['size']}, peak {lim['peak']}, "
                         f"mean wait {lim['mean_wait_ms']:.2f} ms, "
                         f"{lim['seconds_at_capacity']:.2f} s at capacity")
        for name, rate in (self.limits or {}).get("rate_limits", {}).items():
            lines.append(f"  rate limit {name}: {rate['rate']}, achieved "
                         f"{rate['achieved_per_second']:.1f}/s over {rate['starts']} starts")
        return "\n".join(lines)


def summary_dict(outcome: RunOutcome, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    data = outcome.stats.to_dict()
    data["worker_restarts"] = outcome.restarts
    data["hard_timeouts"] = outcome.hard_timeouts
    if outcome.limits:
        data.update(outcome.limits)
    if extra:
        data.update(extra)
    return data
