"""Crash recovery as a pure policy: what becomes of the jobs a dead worker had in flight.

* If the worker's watchdog named the instance that blocked its loop (the *culprit*), that
  instance is retried when its step has retries left, else failed with ``HardTimeout``; its
  neighbours re-run without a crash counted against them.
* Otherwise every lost job counts one crash and becomes a *suspect*: suspects re-run one at
  a time, alone on a worker, so the next crash is blamed on exactly one instance and a
  poison instance cannot take its neighbours down with it. A job that has crashed
  ``max_crashes`` workers is failed with ``WorkerLost``. With ``alone_from`` 2 (a loss that
  is no evidence against any one job, such as a Ray actor whose process died), a job lost
  for the first time runs again as usual, its crash counted; lost again, it is a suspect.

No processes, files or clocks here: :func:`decide` maps its arguments to a :class:`Decision`
and the pool carries it out (a :class:`Failure` encodes its own result line when asked).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from shardflow.batch.jobs import Job
from shardflow.engine.results import lost_line
from shardflow.errors import HARD_TIMEOUT, WORKER_LOST


@dataclass(frozen=True, slots=True)
class Culprit:
    """What a worker's watchdog reported before it ended the worker."""

    seq: int
    step: str | None = None
    retries: int = 0

    @classmethod
    def from_report(cls, report: dict[str, Any] | None) -> Culprit | None:
        """The culprit of a watchdog report (``{"seq", "step", "retries"}``), if it names one."""
        if not report or not isinstance(report.get("seq"), int):
            return None
        step = report.get("step")
        retries = report.get("retries", 0)
        return cls(report["seq"], step if isinstance(step, str) else None,
                   retries if isinstance(retries, int) else 0)


@dataclass(frozen=True, slots=True)
class Failure:
    """A job given up on: the error its result line carries."""

    job: Job
    error_type: str
    message: str
    step: str | None = None

    def result_line(self) -> bytes:
        """The instance's output line: failed, its input as context, this error."""
        job = self.job
        return lost_line(job.id, job.line, self.error_type, self.message, job.attempt - 1,
                         self.step)


@dataclass(frozen=True, slots=True)
class Decision:
    requeue: list[Job] = field(default_factory=list)
    """Run again as usual (the culprit with retries left, its innocent neighbours)."""
    suspects: list[Job] = field(default_factory=list)
    """Run again one at a time, each alone on a worker."""
    failed: list[Failure] = field(default_factory=list)
    hard_timeouts: int = 0
    """How many lost jobs were stopped by the watchdog (0 or 1)."""


def decide(lost: list[Job], culprit: Culprit | None, max_crashes: int,
           hard_timeout: float | None = None, *, alone_from: int = 1) -> Decision:
    """The fate of every job in ``lost``; each comes back as a new :class:`Job` with its
    counters (``attempt``, ``crashes``, ``hard_timeouts``) moved on. Without a culprit, a job
    runs alone once it has crashed ``alone_from`` workers."""
    requeue: list[Job] = []
    suspects: list[Job] = []
    failed: list[Failure] = []
    hard_timeouts = 0
    for job in lost:
        if culprit is not None and job.seq == culprit.seq:
            retried = replace(job, attempt=job.attempt + 1, hard_timeouts=job.hard_timeouts + 1)
            hard_timeouts += 1
            if retried.hard_timeouts > culprit.retries:
                limit = f"{hard_timeout:g} s" if hard_timeout is not None else "the hard timeout"
                failed.append(Failure(
                    retried, HARD_TIMEOUT,
                    f"step {culprit.step!r} blocked the event loop for more than {limit} "
                    "(hard timeout); its worker was replaced", culprit.step))
            else:
                requeue.append(retried)
        elif culprit is not None:
            requeue.append(replace(job, attempt=job.attempt + 1))
        else:
            crashed = replace(job, attempt=job.attempt + 1, crashes=job.crashes + 1)
            if crashed.crashes >= max_crashes:
                failed.append(Failure(
                    crashed, WORKER_LOST,
                    f"instance {job.id!r} was running when its worker process died, "
                    f"{crashed.crashes} times; giving up"))
            elif crashed.crashes >= alone_from:
                suspects.append(crashed)
            else:
                requeue.append(crashed)
    return Decision(requeue, suspects, failed, hard_timeouts)
