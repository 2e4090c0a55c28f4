"""Which step blocks an event loop, read from the loop thread's frames by another thread.

A step that blocks the loop (a CPU loop, ``time.sleep``) leaves its thread's Python stack
standing: the step's own frames on top, and under them the engine frame that awaited it
(``run_step`` or a compiled schedule: the two forms of ``engine/attempt.py``'s step attempt),
whose context names the step while it runs (``current_step``, the running step's record),
and at or under it a frame holding the instance's :class:`InstanceState`, which carries the
host's name for the job (``InstanceState.job``: the shard runner's ``seq``). Which frames are
attempts, and where their context is, is ``attempt.running_step``'s to say: it is the
module that writes those frames; this one only walks the stack. A watchdog thread walks it
(``sys._current_frames``) when the loop has stopped ticking.

Why not a registry (task -> running step) kept as steps start and end: that costs a dict write
and a delete on every step of every instance (docs/DECISIONS.md) to answer a question that is
asked only when a loop is already stuck; reading the frames costs nothing until then. It also
tells jobs apart that share an instance id spelling (``1`` and ``"1"``), which the registry
could not. """

from __future__ import annotations

import sys
from types import FrameType

from shardflow.engine.attempt import running_step
from shardflow.engine.state import InstanceState
from shardflow.model.plan import Plan
from shardflow.model.steps import BaseMachineStep


def blocked_step(thread_id: int, plan: Plan
                 ) -> tuple[str, BaseMachineStep, InstanceState] | None:
    """(step path, step, the instance's state) for the step of ``plan`` the thread
    ``thread_id`` is in, or None if it is in none."""
    frame: FrameType | None = sys._current_frames().get(thread_id)
    found: tuple[str, BaseMachineStep] | None = None
    while frame is not None:
        if found is None:
            step = running_step(frame, plan)
            if step is False:
                return None
            if isinstance(step, tuple):
                found = step
        if found is not None:  # the attempt's frame, or one below it, holds the instance
            for value in frame.f_locals.values():
                if isinstance(value, InstanceState):
                    return found[0], found[1], value
        frame = frame.f_back
    return None
