"""The exception tree of shardflow.

Every error shardflow raises on purpose derives from :class:`ShardflowError`, and each one
carries the offending name as an attribute as well as in its message, so callers can react
without parsing strings::

    ShardflowError                   also named WorkflowsError (litestar-workflows' root)
    ├── WorkflowValidationError      a definition has problems (``.problems``, also ``.errors``:
    │                                every one, each a ValidationProblem: ``.kind``, ``.names``)
    ├── WorkflowNotFoundError        unknown workflow name or version (``.name``, ``.version``);
    │                                also a KeyError, as a registry lookup is
    ├── WorkflowLoadError            a ``module:attribute`` target cannot be loaded (``.target``)
    ├── ContextValueError            a non-JSON value written to a context (``.step``, ``.key``)
    ├── MergeConflictError           two branches wrote different values (``.key``, ``.branches``)
    ├── StepTimeoutError             a step ran past ``timeout_seconds`` (``.step``, ``.timeout``)
    ├── RaceLostError                every branch of a race failed (``.step``, ``.errors``)
    ├── GroupFailedError             too few branches of a tolerant group succeeded (``.step``)
    ├── InstanceNotFoundError        unknown instance id (``.instance_id``); also named
    │                                WorkflowInstanceNotFoundError
    ├── WorkflowAlreadyCompletedError  the instance has finished (``.instance_id``, ``.status``)
    ├── StepNotFoundError            the workflow has no such step (``.step_name``, ``.steps``);
    │                                also a KeyError
    ├── InstanceWaitingError         a step scheduled on a waiting instance (``.waiting_at``);
    │                                also a ValueError
    ├── StepExecutionError           a step failed, wrapped with its name (``.step_name``, ``.cause``)
    ├── InvalidTransitionError       an edge cannot be followed (``.from_step``, ``.to_step``)
    │   └── InvalidConditionError    a string condition outside the grammar, when the edge is
    │                                made (``.expression``, ``.part``); also a ValueError
    ├── HumanTaskError               what goes wrong with a human task:
    │   ├── TaskNotFoundError        unknown human task id (``.task_id``); also a KeyError
    │   │   ├── InstanceNotWaitingError  no task to complete: the instance is not waiting
    │   │   │                            (``.instance_id``, ``.step_name``, ``.status``)
    │   │   └── NotWaitingAtStepError    it waits, at other steps (``.waiting_at``); both
    │   │                                also ValueErrors, as in litestar-workflows
    │   ├── TaskAlreadyCompletedError  a human task was completed before (``.task_id``)
    │   ├── TaskValidationError      form data violates the schema (``.task_id``, ``.violations``)
    │   └── UnauthorizedTaskError    this user may not complete it (``.task_id``, ``.user_id``)
    ├── ConfigError                  a bad run configuration (``.key``)
    ├── InputError                   a bad input record (``.source``, ``.line``)
    └── WorkerStartError             batch workers cannot start the workflow (``.target``)

A batch result that failed for a reason outside the workflow's own steps names it in its
``error.type``: :data:`INVALID_INPUT` (the input line cannot be an instance), :data:`WORKER_LOST`
(the instance took its worker process down too often) or :data:`HARD_TIMEOUT` (a step blocked
the worker's event loop). They are strings in output lines, not exceptions anyone raises.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class ShardflowError(Exception):
    """Root of every error shardflow raises on purpose."""


WorkflowsError = ShardflowError
"""litestar-workflows' name of the root error: ``except WorkflowsError`` in ported code
catches every error shardflow raises on purpose."""


class ValidationProblem(str):
    """One problem of a definition: a sentence naming what is wrong, which also carries what
    kind of problem it is (``kind``, e.g. ``"cycle"``, ``"unknown_node"``) and the names it
    concerns (``names``: node ids, a cycle node by node, a reducer key ...), so callers can
    react without parsing the sentence."""

    kind: str
    names: tuple[str, ...]

    def __new__(cls, text: str, kind: str = "", names: Sequence[str] = ()) -> ValidationProblem:
        problem = super().__new__(cls, text)
        problem.kind = kind
        problem.names = tuple(names)
        return problem

    def __reduce__(self) -> tuple[type[ValidationProblem], tuple[str, str, tuple[str, ...]]]:
        return (ValidationProblem, (str(self), self.kind, self.names))


class WorkflowValidationError(ShardflowError):
    """A workflow definition has one or more problems; ``problems`` lists all of them.

    Raised as ``WorkflowValidationError(workflow_name, problems)``; litestar-workflows'
    ``WorkflowValidationError(errors)``, a list without the name, works too. ``errors`` is
    another name of ``problems``."""

    def __init__(self, workflow: str | Sequence[str], problems: Sequence[str] | None = None) -> None:
        if problems is None and not isinstance(workflow, str):
            workflow, problems = "", workflow
        self.workflow = str(workflow)
        self.problems = [p if isinstance(p, ValidationProblem) else ValidationProblem(p)
                         for p in problems or ()]
        lines = "\n".join(f"  - {p}" for p in self.problems)
        what = f"workflow {self.workflow!r}" if self.workflow else "the workflow"
        count = f"{len(self.problems)} problem{'' if len(self.problems) == 1 else 's'}"
        super().__init__(f"{what} is invalid ({count}):\n{lines}")

    @property
    def errors(self) -> list[ValidationProblem]:
        return self.problems

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.workflow, self.problems))


class WorkflowNotFoundError(ShardflowError, KeyError):
    """No registered workflow has this name (or this version). A ``KeyError`` too: a
    registry is looked up by key, and litestar-workflows code catches ``KeyError``."""

    def __init__(self, name: str, version: str | None = None, hint: str = "") -> None:
        self.name = name
        self.version = version
        what = f"{name!r} version {version!r}" if version else repr(name)
        super().__init__(f"Workflow {what} not found{hint}")  # litestar-workflows' words

    def __str__(self) -> str:
        return str(self.args[0])  # not KeyError's repr of the key


class WorkflowLoadError(ShardflowError):
    """A workflow reference (``module:attribute`` or ``file.py:attribute``) cannot be loaded."""

    def __init__(self, target: str, reason: str) -> None:
        self.target = target
        self.reason = reason
        super().__init__(f"cannot load workflow {target!r}: {reason}")


class ContextValueError(ShardflowError, TypeError):
    """A value written to a context is not JSON (orjson) serialisable."""

    def __init__(self, key: str, value_type: str, step: str | None = None) -> None:
        self.key = key
        self.step = step
        self.value_type = value_type
        where = f" by step {step!r}" if step else ""
        super().__init__(
            f"context key {key!r} written{where} holds a {value_type}, which is not JSON; "
            "contexts hold only JSON values (dict, list, str, int, float, bool, None)"
        )


class MergeConflictError(ShardflowError):
    """Two parallel branches wrote different values to one key and no merge rule covers it."""

    def __init__(self, key: str, branches: Sequence[str], step: str | None = None) -> None:
        self.key = key
        self.branches = list(branches)
        self.step = step
        super().__init__(
            f"branches {', '.join(map(repr, self.branches))} wrote different values to context key "
            f"{key!r}; declare merge_policy='last_wins' or a reducer for {key!r} on the definition"
        )


class StepTimeoutError(ShardflowError, TimeoutError):
    """A step ran longer than its ``timeout_seconds`` and was cancelled."""

    def __init__(self, step: str, timeout: float) -> None:
        self.step = step
        self.timeout = timeout
        super().__init__(f"step {step!r} timed out after {timeout:g} s")


class RaceLostError(ShardflowError):
    """Every branch of a :class:`RaceGroup` failed; ``errors`` maps branch to its exception."""

    def __init__(self, step: str, errors: dict[str, BaseException]) -> None:
        self.step = step
        self.errors = errors
        detail = "; ".join(f"{b}: {type(e).__name__}: {e}" for b, e in errors.items())
        super().__init__(f"every branch of race {step!r} failed ({detail})")


class GroupFailedError(ShardflowError):
    """Too few branches of a tolerant :class:`ParallelGroup` succeeded (``min_success``)."""

    def __init__(self, step: str, succeeded: int, required: int) -> None:
        self.step = step
        self.succeeded = succeeded
        self.required = required
        super().__init__(
            f"parallel group {step!r}: {succeeded} branch(es) succeeded, {required} required"
        )


class InstanceNotFoundError(ShardflowError, KeyError):
    """No instance with this id is known to the engine."""

    def __init__(self, instance_id: object) -> None:
        self.instance_id = instance_id
        super().__init__(f"workflow instance {instance_id!r} not found")

    def __str__(self) -> str:
        return str(self.args[0])


WorkflowInstanceNotFoundError = InstanceNotFoundError
"""litestar-workflows' name of :class:`InstanceNotFoundError`."""


class WorkflowAlreadyCompletedError(ShardflowError):
    """The instance has finished (``status``: completed, failed or cancelled), so it can no
    longer be changed."""

    def __init__(self, instance_id: object, status: str) -> None:
        self.instance_id = instance_id
        self.status = status
        super().__init__(f"workflow instance {instance_id!r} is already {status}")


class StepNotFoundError(ShardflowError, KeyError):
    """The workflow has no step (node) ``step_name``; ``steps`` lists the node ids it has."""

    def __init__(self, step_name: str, workflow: str, steps: Sequence[str]) -> None:
        self.step_name = step_name
        self.workflow = workflow
        self.steps = list(steps)
        super().__init__(f"step {step_name!r} not found in workflow {workflow!r} "
                         f"(its steps: {', '.join(map(repr, self.steps))})")

    def __str__(self) -> str:
        return str(self.args[0])


class InstanceWaitingError(ShardflowError, ValueError):
    """The instance waits for its tasks (at ``waiting_at``), so a step cannot be scheduled on
    it: its tasks are completed, or it is cancelled, first."""

    def __init__(self, instance_id: object, step_name: str, waiting_at: str | None) -> None:
        self.instance_id = instance_id
        self.step_name = step_name
        self.waiting_at = waiting_at
        super().__init__(
            f"workflow instance {instance_id!r} is waiting at step {waiting_at!r}: complete "
            f"its tasks or cancel it before scheduling step {step_name!r}")


class StepExecutionError(ShardflowError):
    """A step failed; ``cause`` is what it raised. For code that wraps a step's error with the
    step's name (the engine itself records a step's own exception in the instance's error)."""

    def __init__(self, step_name: str, cause: BaseException | None = None) -> None:
        self.step_name = step_name
        self.cause = cause
        why = f": {type(cause).__name__}: {cause}" if cause is not None else ""
        super().__init__(f"step {step_name!r} failed{why}")


class InvalidTransitionError(ShardflowError):
    """The edge ``from_step -> to_step`` cannot be followed; ``reason`` says why."""

    def __init__(self, from_step: str, to_step: str, reason: str | None = None) -> None:
        self.from_step = from_step
        self.to_step = to_step
        self.reason = reason
        why = f": {reason}" if reason else ""
        super().__init__(f"invalid transition {from_step!r} -> {to_step!r}{why}")


class InvalidConditionError(InvalidTransitionError, ValueError):
    """The string condition of the edge ``from_step -> to_step`` is not in the grammar of
    conditions (docs/SEMANTICS.md): ``part`` is the offending part of ``expression``, and
    ``why`` says what is wrong with it. Raised when the edge is made, so a bad expression
    never reaches a run."""

    def __init__(self, from_step: str, to_step: str, expression: str, part: str, why: str) -> None:
        self.expression = expression
        self.part = part
        self.why = why
        where = "" if part == expression else f" at {part!r}"
        super().__init__(from_step, to_step, f"condition {expression!r} is refused{where}: {why}")
        self.args = (f"edge {from_step!r} -> {to_step!r}: {self.reason}",)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.from_step, self.to_step, self.expression, self.part, self.why))


class HumanTaskError(ShardflowError):
    """Root of the errors about a human task (finding, completing, validating it)."""


class TaskNotFoundError(HumanTaskError, KeyError):
    """No human task with this id exists."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        super().__init__(f"human task {task_id!r} not found")

    def __str__(self) -> str:
        return str(self.args[0])


class InstanceNotWaitingError(TaskNotFoundError, ValueError):
    """A task was to be completed at a step of an instance that waits for nothing (it runs or
    has finished: ``status``). A ``TaskNotFoundError`` (it has no open task) and, as in
    litestar-workflows, a ``ValueError``."""

    def __init__(self, instance_id: object, step_name: str, status: str) -> None:
        self.instance_id = instance_id
        self.step_name = step_name
        self.status = status
        HumanTaskError.__init__(
            self, f"workflow instance {instance_id!r} is not waiting (status: {status}), so "
            f"step {step_name!r} has no task to complete")
        self.task_id = f"{instance_id}/{step_name}"


class NotWaitingAtStepError(TaskNotFoundError, ValueError):
    """A task was to be completed at a step where the waiting instance has no open task;
    ``waiting_at`` names the steps it waits at. A ``TaskNotFoundError`` and, as in
    litestar-workflows, a ``ValueError``."""

    def __init__(self, instance_id: object, step_name: str, waiting_at: Sequence[str]) -> None:
        self.instance_id = instance_id
        self.step_name = step_name
        self.waiting_at = tuple(waiting_at)
        where = ", ".join(map(repr, self.waiting_at)) or "no step with a task open here"
        HumanTaskError.__init__(
            self, f"workflow instance {instance_id!r} is waiting at step {where}, "
            f"not at {step_name!r}")
        self.task_id = f"{instance_id}/{step_name}"


class TaskAlreadyCompletedError(HumanTaskError):
    """The human task was already completed; a task completes exactly once."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        super().__init__(f"human task {task_id!r} is already completed")


class TaskValidationError(HumanTaskError, ValueError):
    """Submitted form data violates the task's JSON Schema; ``violations`` lists every one."""

    def __init__(self, task_id: str, violations: Sequence[str]) -> None:
        self.task_id = task_id
        self.violations = list(violations)
        lines = "\n".join(f"  - {v}" for v in self.violations)
        super().__init__(f"data for human task {task_id!r} is invalid:\n{lines}")


class UnauthorizedTaskError(HumanTaskError):
    """The user ``user_id`` may not complete the human task ``task_id``."""

    def __init__(self, task_id: str, user_id: str) -> None:
        self.task_id = task_id
        self.user_id = user_id
        super().__init__(f"user {user_id!r} is not authorized to complete human task {task_id!r}")


class ConfigError(ShardflowError):
    """A run configuration value is missing or wrong; ``key`` names it, ``reason`` says what
    is wrong, and ``origin`` is the config file it was read from, if any (the command line
    names the flag or the file the user actually wrote instead of ``key``)."""

    def __init__(self, key: str, message: str, origin: str | None = None) -> None:
        self.key = key
        self.reason = message
        self.origin = origin
        super().__init__(f"config {key!r}: {message}")


class InputError(ShardflowError):
    """An input record cannot be parsed; ``source`` and ``line`` say where."""

    def __init__(self, source: str, line: int, message: str) -> None:
        self.source = source
        self.line = line
        super().__init__(f"{source}:{line}: {message}")


class WorkerStartError(ShardflowError):
    """Batch worker processes cannot run the workflow: it fails to load in them (the same
    error in every attempt), or they never become ready within the start-up timeout."""

    def __init__(self, target: str, reason: str) -> None:
        self.target = target
        self.reason = reason
        super().__init__(f"workers cannot start workflow {target!r}: {reason}")


INVALID_INPUT = "InvalidInput"
"""``error.type`` of a result whose input line cannot be an instance."""
WORKER_LOST = "WorkerLost"
"""``error.type`` of a result whose instance was running when its worker died, too often."""
HARD_TIMEOUT = "HardTimeout"
"""``error.type`` of a result whose step blocked the worker's event loop past the hard timeout."""
