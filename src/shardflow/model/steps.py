"""Step base classes: what users subclass to write a workflow's units of work.

Per-step policies are class attributes with Prefect's names, so a step says how it should be
run next to what it does; the engine reads them once, when a definition is compiled.

A step is written the guide's way (``name``, ``title`` ... as class attributes, then
``MyStep()``) or the litestar-workflows way (``MyStep(name="charge", description=...)``):
constructor arguments set the same attributes on the instance, so one class can serve
several nodes under different names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import orjson

from shardflow._types import StepType

if TYPE_CHECKING:
    from shardflow.context import WorkflowContext


class BaseStep:
    """Common attributes of machine and human steps.

    ``name`` identifies the step inside a group and in history; ``timeout_seconds`` is enforced
    by cancelling the step; ``retries`` more attempts follow a failure whose type is in
    ``retry_on``, after ``retry_delay_seconds`` (a number, or one per retry) scaled by a random
    factor in ``1 ± retry_jitter_factor``. ``limit`` names concurrency limits and ``rate_limit``
    a rate limit, both sized by the run's configuration.

    The hooks ``can_execute``, ``on_success`` and ``on_failure`` are litestar-workflows':
    a guard that may skip the step, and what to do after it succeeded or failed.
    """

    name: str = ""
    description: str = ""
    step_type: ClassVar[StepType]
    timeout_seconds: ClassVar[float | None] = None
    retries: ClassVar[int] = 0
    retry_delay_seconds: ClassVar[float | list[float]] = 0.0
    retry_jitter_factor: ClassVar[float | None] = None
    retry_on: ClassVar[tuple[type[BaseException], ...]] = (Exception,)
    limit: ClassVar[str | tuple[str, ...] | None] = None
    rate_limit: ClassVar[str | None] = None
    store_result: ClassVar[bool] = False
    """Opt-in: also store the step's return value (unless None) in the context under its
    node id, as shardflow did before issue 20 (the value must then be JSON)."""
    guarded: ClassVar[bool] = False
    """Set per class: ``can_execute`` is overridden (the step may be skipped)."""
    reads_step_history: ClassVar[bool] = False
    """Declare True when the step reads ``context.step_history`` (``get_last_execution``,
    ``has_step_executed``) only through code outside its class, such as a helper function:
    batch workers keep a step log only for definitions that read it, and detect reads in the
    steps' own methods and edge conditions (``engine/history_need.py``)."""
    hooked: ClassVar[bool] = False
    """Set per class: a hook is overridden, so the engine runs the step through its full
    attempt (``engine/attempt.run_step``); steps without hooks pay nothing for them."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Decided once per class, when it is defined: the engine reads two booleans per step.
        super().__init_subclass__(**kwargs)
        cls.guarded = cls.can_execute is not BaseStep.can_execute
        cls.hooked = (cls.guarded or cls.on_success is not BaseStep.on_success
                      or cls.on_failure is not BaseStep.on_failure)

    def __init__(self, name: str | None = None, description: str | None = None) -> None:
        # Only what is given is set on the instance: the class attributes stay the defaults.
        if name is not None:
            self.name = name
        if description is not None:
            self.description = description

    @property
    def step_name(self) -> str:
        """``name``, or the class name when a step does not set one."""
        return self.name or type(self).__name__

    async def can_execute(self, context: WorkflowContext) -> bool:
        """Whether the step runs: False skips it, as a false edge condition would."""
        return True

    async def on_success(self, context: WorkflowContext, result: Any) -> None:
        """Called after ``execute`` returned ``result``."""

    async def on_failure(self, context: WorkflowContext, error: BaseException) -> None:
        """Called after the step failed with ``error`` (its last attempt, after retries)."""

    def __repr__(self) -> str:
        given = f"name={self.name!r}" if "name" in vars(self) else ""
        return f"{type(self).__name__}({given})"



class BaseMachineStep(BaseStep):
    """A step the engine runs: implement ``async def execute(self, context)``.

    The return value is recorded in the step's history (``context.step_history``); it is
    stored in the context under the step's node id only with ``store_result = True``.
    """

    step_type = StepType.MACHINE

    async def execute(self, context: WorkflowContext) -> Any:
        raise NotImplementedError(f"{type(self).__name__}.execute is not implemented")


class BaseHumanStep(BaseStep):
    """A step people complete: reaching it creates a :class:`HumanTask` and the instance waits.

    The submitted form data is validated against ``form_schema`` (JSON Schema) and stored in the
    context under the step's node id, so ``context.get("legal_approval.approved")`` works
    (or at the top level, with ``form_data_at_top_level``).

    ``assignee`` names who the task is for; litestar-workflows' ``assignee_key`` names the
    context key holding it instead.

    What the approver sees next to the form is chosen here: ``description`` says what is asked,
    and ``display`` maps labels to context paths (``{"Customer": "order.customer", "Amount":
    "order.total"}``); the task records those values as they were when it opened.
    """

    step_type = StepType.HUMAN
    title: str = ""
    form_schema: dict[str, Any] | None = None
    assignee: str | None = None
    assignee_key: str | None = None
    due_in_seconds: ClassVar[float | None] = None
    display: dict[str, str] | None = None
    form_data_at_top_level: bool = False
    """Opt-in: store the submitted form's fields at the top level of the context
    (``context.get("approved")``, litestar-workflows' quickstart) instead of under the node
    id. Validation refuses two such steps that may run concurrently (their fields would
    conflict at the join)."""

    def __init__(self, name: str | None = None, title: str | None = None,
                 description: str | None = None, form_schema: dict[str, Any] | None = None,
                 assignee_key: str | None = None,
                 display: dict[str, str] | None = None) -> None:
        super().__init__(name, description)
        if title is not None:
            self.title = title
        if form_schema is not None:
            self.form_schema = form_schema
        if assignee_key is not None:
            self.assignee_key = assignee_key
        if display is not None:
            self.display = display

    def shown(self, context: WorkflowContext) -> list[dict[str, Any]]:
        """The ``display`` fields of ``context``: ``{"label", "path", "value"}`` each, in the
        order given; a path the context lacks has ``"missing": true`` and value ``None``."""
        fields: list[dict[str, Any]] = []
        for label, path in (self.display or {}).items():
            value = context.get(path, _ABSENT)
            if value is _ABSENT:
                fields.append({"label": label, "path": path, "value": None, "missing": True})
            else:  # a copy: the task keeps the value as it was when it opened
                fields.append({"label": label, "path": path, "value": orjson.loads(orjson.dumps(value))})
        return fields


_ABSENT = object()
