"""RunOutcome: what one coordinator session did, and why it ended early if it did; the summary
(terminal and ``--summary-json``) made of it."""

from __future__ import annotations

import errno
import math
from dataclasses import dataclass
from typing import Any

from shardflow.batch.config import RunConfig
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
    """Records of waiting instances this session continued (an earlier session's, or its
    own whose timers fired): each supersedes that instance's earlier ``waiting`` record."""
    output_error: RunIOError | None = None
    """Writing the output failed: input reading stopped, instances in flight finished into
    the journal, nothing more was written to the output. The run can be resumed."""
    journal_error: RunIOError | None = None
    """Writing the journal (or the task store) failed: dispatch stopped at once; what was
    journalled before stays, the rest runs again on resume."""
    start_failures: int = 0
    """Workers that died during start-up and were replaced."""
    config: RunConfig | None = None
    """The settings the session ran with, defaults filled in (``hard_timeout`` as applied)."""

    def render(self) -> str:
        """The end-of-run summary for stderr."""
        lines = [self.stats.render()]
        if self.restarts:
            lines.append(f"  worker restarts: {self.restarts} ({self.hard_timeouts} hard timeouts)")
        for name, lim in (self.limits or {}).get("limits", {}).items():
            lines.append(f"  limit {name}: size {lim['size']}, peak {lim['peak']}, "
                         f"mean wait {lim['mean_wait_ms']:.2f} ms, "
                         f"{lim['seconds_at_capacity']:.2f} s at capacity")
        for name, rate in rate_reports(self.limits).items():
            verdict = "held" if rate["held"] else "EXCEEDED"
            lines.append(f"  rate limit {name}: {rate['configured_per_second']:g}/s with a burst of "
                         f"{rate['burst']}: {verdict} ({rate['starts']} starts in "
                         f"{rate['window_seconds']:.2f} s, {rate['allowed_starts']} allowed)")
        return "\n".join(lines)


def rate_reports(limits: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Each rate limit's report with whether it held: between its first and last start
    (``window_seconds``) a rate limit allows ``rate * window + burst`` starts. A short run
    can show a mean rate above the configured one only because of the burst allowance."""
    reports = {}
    for name, rate in (limits or {}).get("rate_limits", {}).items():
        allowed = math.floor(rate["configured_per_second"] * rate["window_seconds"] + 1e-6) + rate["burst"]
        reports[name] = {**rate, "allowed_starts": allowed, "held": rate["starts"] <= allowed}
    return reports


def summary_dict(outcome: RunOutcome, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    data = outcome.stats.to_dict()
    data["worker_restarts"] = outcome.restarts
    data["hard_timeouts"] = outcome.hard_timeouts
    if outcome.config is not None:
        data["config"] = outcome.config.to_dict()
    if outcome.limits:
        data.update(outcome.limits)
        data["rate_limits"] = rate_reports(outcome.limits)
    if extra:
        data.update(extra)
    return data
