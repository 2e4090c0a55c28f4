"""What became of a lost shard actor, as Ray tells it, and what that means for its jobs.

A call that fails with ``ActorUnavailableError`` is no verdict: the actor's process may have
crashed, its node may be dying, or the connection was cut. Ray decides within its health
check (a dead node after ~15 s by default); until then the actor gets no work. Then:

* died with its node, was killed with ``ray.kill`` by someone else, or answered again (its
  calls were cut off): no instance's doing, its jobs in flight run again as they were
  (*innocent*);
* its process died on a live node: Ray says the same ("connection error code 2. End of
  file") for a ``kill -9``, the OOM killer, a segfault or ``os._exit`` in a step, so the death
  is no evidence against any one job. Its jobs run again as usual with the crash counted;
  a job lost a second time is a suspect and runs alone (:func:`alone_from`), so a poison
  instance is still isolated (at its second crash) and failed alone (at its third);
* anything else, or no verdict within ``VERDICT_SECONDS``: its jobs are suspects of a
  crash at once, as with a worker process.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from ray.exceptions import ActorDiedError, ActorUnavailableError, NodeDiedError, RayError

VERDICT_SECONDS = 60.0
"""How long an unreachable actor may stay undecided before its jobs count as crashed."""
_PAUSE = 0.25


async def verdict_on(actor: Any) -> RayError | None:
    """Ask the unreachable ``actor`` until Ray declares it dead (the error that says why) or
    it answers (``None``)."""
    try:
        async with asyncio.timeout(VERDICT_SECONDS):
            while True:
                try:
                    await actor.stats.remote()
                except ActorUnavailableError:
                    await asyncio.sleep(_PAUSE)  # Ray has not decided yet
                    continue
                except RayError as exc:
                    return exc
                return None
    except TimeoutError:
        return RayError(f"unreachable for {VERDICT_SECONDS:g} s")


async def until_dead(actor: Any) -> None:
    """Return once a call on the killed ``actor`` fails, i.e. Ray reports it dead (30 s at
    most). Its limit slots go back then, not when the driver asked for its death: a step
    blocking its loop may still be inside a limited call, and granting that slot meanwhile
    would exceed the limit."""
    with contextlib.suppress(RayError, TimeoutError):
        await asyncio.wait_for(actor.stats.remote(), 30.0)


def innocent(exc: RayError | None) -> bool:
    """Whether the loss is no instance's doing (``None``: the actor answered again)."""
    return exc is None or node_died(exc) or _KILLED_BY_RAY in str(exc)


def alone_from(exc: RayError | None) -> int:
    """After how many lost actors a job of this loss runs alone (as a suspect): 2 when Ray
    says the actor's process died (no evidence against any one job), else 1."""
    if isinstance(exc, ActorDiedError) and not exc.actor_init_failed and process_died(exc):
        return 2
    return 1


def process_died(exc: RayError) -> bool:
    """Whether Ray says the actor's worker process died (killed or crashed; its node lives)."""
    return _PROCESS_DIED in str(exc)


_KILLED_BY_RAY = "killed by `ray.kill`"
_PROCESS_DIED = "its worker process has died"


def node_died(exc: RayError) -> bool:
    """Whether Ray says the actor died with its node (Ray gives the cause in the message)."""
    return isinstance(exc, NodeDiedError) or "because its node has died" in str(exc)


def why_lost(exc: RayError | None) -> str:
    """Ray's account of a loss in a few words."""
    if exc is None:
        return "its calls were cut off"
    if node_died(exc):
        return "its node died"
    if process_died(exc):
        return "its process died on a live node: killed, or crashed"
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:200]
