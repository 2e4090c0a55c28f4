"""run_instance: the one error boundary of a workflow instance, whoever hosts it.

:func:`run_instance` is the rule in one function. Hosts whose every start pays for the
coroutine level it adds await the instance's work in their own coroutine and end it through
the two functions :func:`run_instance` is made of (:func:`failure` in the ``except`` clause,
:func:`settle` after): ``LocalExecutionEngine``'s driver, ``InstanceRunner.run`` and the
shard runner of a batch worker; ``InstanceRunner.resume`` calls :func:`run_instance`
itself. So an instance ends the same way everywhere. The rules:

* whatever a step, a join, a condition or the engine itself raises, any ``Exception`` and
  any ``BaseException`` other than ``KeyboardInterrupt``, ``SystemExit`` or a cancellation of
  the task from outside, fails the instance with that error, naming where
  (an :data:`Ending` with status ``failed``);
* so does a failure to merge the paths' contexts into the final one (``<end>``), to park the
  instance (``<park>``: its snapshot or the host's store), or anything else after its steps;
* those three propagate, for the host to handle (a cancelled instance, a process stopping).

No error leaves an instance ``running``: the host gets an :data:`Ending` or the exception,
and the instance's state is left as it was for the host to record.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from shardflow._types import WorkflowStatus
from shardflow.context import WorkflowContext
from shardflow.engine.attempt import StepFailure, is_cancellation
from shardflow.engine.interpreter import Interpreter
from shardflow.engine.records import ErrorInfo

_COMPLETED = WorkflowStatus.COMPLETED
_WAITING = WorkflowStatus.WAITING
_FAILED = WorkflowStatus.FAILED
_PROPAGATE = (KeyboardInterrupt, SystemExit)


Ending = tuple[WorkflowStatus, WorkflowContext | None, ErrorInfo | None]
"""How an instance's run ended: (status, context, error).

``status`` is ``completed``, ``waiting`` (for people) or ``failed``; ``context`` the final
context, or for a failure the context the failing step or join had, or the one the run began
with (None if it failed before it had one); ``error`` says why it failed. A plain tuple, not a
NamedTuple: one is made per instance, unpacked once by its host (docs/DECISIONS.md)."""


def failure(exc: BaseException, context: WorkflowContext | None, where: str) -> Ending:
    """The ending of an instance whose run raised ``exc``; called in the ``except`` clause.

    A :class:`StepFailure` names its step and keeps the context it had; anything else names
    ``where`` (the phase of the run) and keeps ``context``. ``KeyboardInterrupt``,
    ``SystemExit`` and a cancellation of the running task are re-raised."""
    if isinstance(exc, StepFailure):
        failed = exc.context if exc.context is not None else context
        return (_FAILED, failed, ErrorInfo.from_exception(exc.node, exc.error))
    if isinstance(exc, _PROPAGATE) or is_cancellation(exc):
        raise exc
    return (_FAILED, context, ErrorInfo.from_exception(where, exc))


def settle(state: Interpreter, context: WorkflowContext | None,
           park: Callable[[Interpreter], None] | None) -> Ending:
    """The ending of an instance whose work returned: its final context merged, and, if it
    waits for people, ``park`` called; a failure of either fails the instance (``<end>``,
    ``<park>``)."""
    try:
        final = state.final_context(context)
    except BaseException as exc:
        return failure(exc, context, "<end>")
    if not state.parked:
        return (_COMPLETED, final, None)
    if park is not None:
        try:
            park(state)
        except BaseException as exc:
            return failure(exc, final, "<park>")
    return (_WAITING, final, None)


async def run_instance(state: Interpreter, work: Awaitable[None],
                       context: WorkflowContext | None,
                       park: Callable[[Interpreter], None] | None = None) -> Ending:
    """Await ``work`` (``state.run(context)``, or a resumption of its parked nodes) and
    return how the instance ended. ``park`` records a waiting instance (its snapshot, its
    store) and is part of the run: if it fails, so does the instance. ``context`` is the
    context a failure keeps when no step's context is at hand.

    A host that must save the coroutine level this adds (see the module docstring)
    awaits the work itself and ends it with the same two calls: :func:`failure` in its
    ``except`` clause, :func:`settle` after."""
    try:
        await work
    except BaseException as exc:
        return failure(exc, context, "<engine>")
    return settle(state, context, park)


async def resume_nodes(state: Interpreter, nodes: list[str]) -> None:
    """Continue each parked node of ``nodes`` in turn (all their tasks completed)."""
    for node in nodes:
        await state.resume(node)
