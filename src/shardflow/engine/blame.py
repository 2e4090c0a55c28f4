"""Which step blocks an event loop, read from the loop thread's frames by another thread.

A step that blocks the loop (a CPU loop, ``time.sleep``) leaves its thread's Python stack
standing: the step's own frames on top, and under them the engine frame that awaited it
(``run_step`` or a compiled schedule: the two forms of ``engine/attempt.py``'s step attempt),
whose context names the step while it runs (``current_step``), and at or under it a frame
holding the instance's state, which carries the host's name for the job
(``InstanceState.job``: the shard runner's ``seq``). A watchdog thread walks that stack
(``sys._current_frames``) when the loop has stopped ticking.

Why not a registry (task -> running step) kept as steps start and end: that costs a dict write
and a delete on every step of every instance (docs/DECISIONS.md) to answer a question that is
asked only when a loop is already stuck; reading the frames costs nothing until then. It also
tells jobs apart that share an instance id spelling (``1`` and ``"1"``), which the registry
could not. """

from __future__ import annotations

import sys
from types import CodeType, FrameType
from typing import Any

from shardflow.engine.attempt import run_step
from shardflow.engine.schedule import SOURCE_PREFIX
from shardflow.engine.state import InstanceState
from shardflow.model.plan import MachinePlan, Plan
from shardflow.model.steps import BaseMachineStep

_RUN_STEP = run_step.__code__
_STATE_NAMES = ("state", "self", "interp")
"""Where a frame under a step holds the instance's state: a compiled schedule's argument,
the interpreter's ``self``, a group runner's ``interp``."""


def blocked_step(thread_id: int, plan: Plan
                 ) -> tuple[str, BaseMachineStep, InstanceState] | None:
    """(step path, step, the instance's state) for the step of ``plan`` the thread
    ``thread_id`` is in, or None if it is in none."""
    frame: FrameType | None = sys._current_frames().get(thread_id)
    found: Any = None
    while frame is not None:
        if found is None:
            found = _step_of(frame, frame.f_code, plan)
            if found is False:
                return None
        if found is not None:  # the frame running the step, or one below it, knows whose
            local = frame.f_locals
            for name in _STATE_NAMES:
                state = local.get(name)
                if isinstance(state, InstanceState):
                    return found[0], found[1], state
        frame = frame.f_back
    return None


def _step_of(frame: FrameType, code: CodeType, plan: Plan) -> Any:
    """(path, step) if ``frame`` is the engine frame running a step; False if it is an
    engine frame between steps (a condition, a merge: no step to blame); None if it is not
    an engine frame."""
    if code is _RUN_STEP:
        local = frame.f_locals
        work = local.get("work", local.get("ctx"))  # a plain step's attempt has no fork
        if work is None or work.current_step is None:
            return False
        return local["path"], local["step"]
    if code.co_filename.startswith(SOURCE_PREFIX):
        ctx = frame.f_locals.get("ctx")
        node = ctx.current_step if ctx is not None else None
        planned = plan.nodes.get(node) if node is not None else None
        if not isinstance(planned, MachinePlan):
            return False
        return node, planned.step
    return None
