"""What every pool does the same way, whatever hosts its shards (processes, Ray actors):
waiting until the work is done, dispatching suspects alone and batches to the others,
talking to the one listener, and stopping when the listener fails.

A pool subclass owns its members (worker processes, shard actors): how they start, how a
batch reaches them, how a lost one is noticed. Each member has an in-flight table and an
``exclusive`` flag (it runs a suspect alone).
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Callable, Sequence
from typing import Generic, ParamSpec, Protocol, TypeVar

from shardflow.batch.crash_policy import Culprit, decide
from shardflow.batch.jobs import Feed, Job
from shardflow.batch.listener import ResultListener
from shardflow.engine.results import Status
from shardflow.engine.rows import ResultRow

P = ParamSpec("P")
_FAILED = int(Status.FAILED)


class Member(Protocol):
    inflight: dict[int, Job]
    exclusive: bool


M = TypeVar("M", bound=Member)


class PoolBase(Generic[M]):
    """The shared half of a pool; ``_members`` is the subclass's slot table."""

    def __init__(self, feed: Feed, listener: ResultListener, size: int, *, max_crashes: int,
                 hard_timeout: float | None) -> None:
        self.feed = feed
        self.listener = listener
        self.max_crashes = max_crashes
        self.hard_timeout = hard_timeout
        self.hard_timeouts = 0
        self.given_up: Counter[tuple[str, str]] = Counter()
        """(step, error type) of each instance the pool failed itself (WorkerLost, HardTimeout)."""
        self._members: list[M | None] = [None] * size
        self._suspects: deque[Job] = deque()
        self._closing = False
        self._idle = asyncio.Event()
        self._fatal: BaseException | None = None
        self._dispatch_soon = False

    # -- what a subclass provides -------------------------------------------------------------
    def _usable(self, member: M) -> bool:
        """Whether ``member`` may be sent work now (started, not stopping, not lost)."""
        raise NotImplementedError

    def _send(self, member: M, jobs: list[Job]) -> None:
        raise NotImplementedError

    async def _start(self, slot: int) -> None:
        """Start the member of ``slot`` (replacing one that dies while starting)."""
        raise NotImplementedError

    async def _start_all(self) -> None:
        """Start every slot at once; if one cannot start, the others are stopped too."""
        starting = [asyncio.ensure_future(self._start(slot)) for slot in range(len(self._members))]
        try:
            await asyncio.gather(*starting)
        except BaseException:
            for task in starting:
                task.cancel()
            await asyncio.wait(starting)
            raise

    def _fill(self, members: Sequence[M]) -> None:
        """Send batches from the feed to ``members`` (none of them runs a suspect)."""
        raise NotImplementedError

    # -- waiting ------------------------------------------------------------------------------
    async def wait_idle(self) -> None:
        """Return when the feed is exhausted and every job's result is in; raise what
        stopped the pool (a member that cannot start, an error of the listener)."""
        while True:
            if self._fatal is not None:
                raise self._fatal
            if self._is_idle():
                return
            self._idle.clear()
            await self._idle.wait()

    def _is_idle(self) -> bool:
        return (self.feed.exhausted and not self._suspects
                and not any(m and m.inflight for m in self._members))

    @property
    def error(self) -> BaseException | None:
        """What stopped the pool, if something did (it takes no more work then)."""
        return self._fatal

    @property
    def in_flight(self) -> int:
        return sum(len(m.inflight) for m in self._members if m)

    def _stopped(self) -> bool:
        return self._fatal is not None

    # -- sending ------------------------------------------------------------------------------
    def submit(self, job: Job) -> None:
        """Queue one job (the embedding API) and send it as soon as a member has room.
        Submissions of one loop iteration go out together, in batches, not one call each."""
        self.feed.put(job)
        if not self._dispatch_soon:
            self._dispatch_soon = True
            asyncio.get_running_loop().call_soon(self._dispatch_now)

    def _dispatch_now(self) -> None:
        self._dispatch_soon = False
        self.dispatch()

    def dispatch(self) -> None:
        """Fill every member's free slots: suspects alone, then batches from the feed."""
        if self._closing or self._fatal is not None:
            return
        members = [m for m in self._members if m is not None and self._usable(m)]
        for member in members:
            if member.exclusive and not member.inflight:
                member.exclusive = False
        if self._suspects:
            for member in members:
                if self._suspects and not member.inflight:
                    member.exclusive = True
                    self._send(member, [self._suspects.popleft()])
        else:
            self._fill([m for m in members if not m.exclusive])
        if self._is_idle():
            self._idle.set()

    # -- a lost member ------------------------------------------------------------------------
    def _recover(self, member: M, culprit: Culprit | None, alone_from: int = 1) -> None:
        """Carry out the recovery policy (:func:`~shardflow.batch.crash_policy.decide`) for every
        job the lost ``member`` had in flight; ``culprit`` is what its watchdog reported."""
        lost = list(member.inflight.values())
        member.inflight.clear()
        decision = decide(lost, culprit, self.max_crashes, self.hard_timeout,
                          alone_from=alone_from)
        self.hard_timeouts += decision.hard_timeouts
        for job in decision.requeue:
            self.feed.requeue(job)
        self._suspects.extend(decision.suspects)
        if decision.failed:
            self.given_up.update((f.step or "<worker>", f.error_type) for f in decision.failed)
            lines = [failure.result_line() for failure in decision.failed]
            self._deliver([f.job for f in decision.failed],
                          [(f.job.seq, _FAILED, 0.0, len(line))
                           for f, line in zip(decision.failed, lines, strict=True)], lines)
            self._settle()

    # -- receiving ----------------------------------------------------------------------------
    def _results(self, member: M, rows: list[ResultRow], lines: list[bytes]) -> None:
        """Results a member sent (rows ``[seq, status, duration, len]``): each job leaves the
        member's in-flight table here, and only now; a result of a job no longer in flight
        (recovered after a loss) is dropped, so nothing is delivered twice."""
        pop = member.inflight.pop
        found = [pop(row[0], None) for row in rows]
        jobs = [job for job in found if job is not None]
        if len(jobs) != len(found):
            kept = [i for i, job in enumerate(found) if job is not None]
            rows = [rows[i] for i in kept]
            lines = [lines[i] for i in kept]
        self._deliver(jobs, rows, lines)
        self._settle()
        self.dispatch()

    def _events(self, inflight: dict[int, Job], seqs: list[int], blobs: list[bytes]) -> None:
        """Events a member sent for jobs still in flight (they precede their results)."""
        events = [(inflight[seq], blob) for seq, blob in zip(seqs, blobs, strict=True)
                  if seq in inflight]
        if events:
            self._tell(self.listener.on_events, events)

    # -- the listener -------------------------------------------------------------------------
    def _deliver(self, jobs: list[Job], rows: list[ResultRow], lines: list[bytes]) -> None:
        if jobs:
            self._tell(self.listener.on_batch, jobs, rows, lines)

    def _settle(self) -> None:
        self._tell(self.listener.on_settled)

    def _tell(self, method: Callable[P, None], *args: P.args, **kwargs: P.kwargs) -> None:
        """Call the listener, unless the pool has stopped; what it raises stops the pool."""
        if self._fatal is None:
            try:
                method(*args, **kwargs)
            except Exception as exc:
                self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        """Stop the pool: no more dispatch or delivery; ``wait_idle`` raises ``exc``."""
        self._idle.set()
        if self._fatal is None:
            self._fatal = exc
            self.listener.on_stopped(exc)
