"""What a context knows of its instance besides its data: litestar-workflows' fields.

A :class:`WorkflowContext` made the litestar-workflows way carries the workflow's id, the
instance's metadata, the history of its step executions, when it started, and the user and
tenant it runs for. They describe the instance, not a branch of it, so every context of one
instance shares one :class:`InstanceInfo`.

Why one slot, ``_instance``, holds either the instance's id or its :class:`InstanceInfo`:
a context knows its instance by id alone unless one of these fields is given or read, and
engines make several contexts per instance (one per fork and join). Keeping the id and the
fields in the one slot the id always had lets a fork copy one reference, as it did before
the fields existed; a second slot cost 0.4 % of an in-process instance (docs/PERFORMANCE.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(slots=True)
class StepExecution:
    """One execution of one step: its name, how it ended (a :class:`StepStatus` value), when,
    its return value or error message, and optionally the data it read and wrote."""

    step_name: str
    status: str
    started_at: datetime
    completed_at: datetime | None = None
    result: Any = None
    error: str | None = None
    input_data: dict[str, Any] | None = None
    output_data: dict[str, Any] | None = None


@dataclass(slots=True)
class InstanceInfo:
    """The litestar-workflows fields of one instance, shared by all of its contexts."""

    instance_id: Any = ""
    workflow_id: Any = None
    metadata: dict[str, Any] = field(default_factory=dict)
    step_history: list[StepExecution] = field(default_factory=list)
    started_at: datetime | None = None
    user_id: str | None = None
    tenant_id: str | None = None

    def last_execution(self, step_name: str | None) -> StepExecution | None:
        """The latest execution of ``step_name`` (of any step when None), or None."""
        history = self.step_history
        if type(history) is StepHistory:
            history.sync()
        for execution in reversed(history):
            if step_name is None or execution.step_name == step_name:
                return execution
        return None


class StepLog(list[Any]):
    """An engine's step log of one instance, (node, status, attempt, started, ended, error)
    entries, which also stands for the instance in its contexts until one of them reads
    the litestar-workflows fields (:meth:`InstanceFields.info`): it knows the instance's id,
    workflow and start, and the return values of its steps (``results``, made when a step
    first returns something). So an instance whose fields nobody reads pays no object for
    them, and its contexts hold nothing that holds them back (no reference cycle)."""

    __slots__ = ("info", "instance_id", "results", "started_at", "workflow_id")

    def __init__(self, instance_id: Any, workflow_id: Any, started_at: float) -> None:
        super().__init__()
        self.instance_id = instance_id
        self.workflow_id = workflow_id
        self.started_at = started_at
        self.results: dict[str, Any] | None = None
        self.info: InstanceInfo | None = None

    def instance_info(self) -> InstanceInfo:
        """The instance's fields, made on first use and shared by every context of it."""
        info = self.info
        if info is None:
            info = self.info = InstanceInfo(self.instance_id, self.workflow_id, {},
                                            StepHistory(self), started_moment(self.started_at))
        return info


class StepHistory(list[StepExecution]):
    """``context.step_history`` of an instance an engine runs: the :class:`StepExecution`
    records of its :class:`StepLog`, made when the history is read (:meth:`sync`), so a step
    pays nothing for a history nobody reads. Records appended by hand stay in place."""

    __slots__ = ("log", "seen")

    def __init__(self, log: StepLog) -> None:
        super().__init__()
        self.log = log
        self.seen = 0

    @property
    def results(self) -> dict[str, Any]:
        """The steps' return values by node id (those that returned something)."""
        results = self.log.results
        if results is None:
            results = self.log.results = {}
        return results

    def sync(self) -> StepHistory:
        """Append the records of the log entries made since the last call; return self."""
        log = self.log
        if self.seen < len(log):
            results = log.results or {}
            for node, status, _attempt, started, ended, error in log[self.seen:]:
                self.append(StepExecution(
                    node, _STEP_STATUS.get(status, status), started_moment(started),
                    started_moment(ended),
                    results.get(node) if status == "completed" else None, error))
            self.seen = len(log)
        return self


_STEP_STATUS = {"completed": "succeeded"}
"""Step log statuses whose StepStatus value differs."""


def started_moment(when: float) -> datetime:
    """``when`` (seconds since the epoch) as an aware UTC datetime, as histories show it."""
    return datetime.fromtimestamp(when, UTC)


def record_result(context: InstanceFields, node: str, result: Any) -> None:
    """Record what step ``node`` returned in the history of ``context``'s instance, if an
    engine keeps one for it (a context made by hand has no step log to attach it to)."""
    instance = context._instance
    if type(instance) is InstanceInfo:
        history = instance.step_history
        if type(history) is not StepHistory:
            return
        instance = history.log
    elif type(instance) is not StepLog:
        return
    results = instance.results
    if results is None:
        results = instance.results = {}
    results[node] = result


def results_kept(context: InstanceFields) -> StepHistory:
    """The history of ``context``'s instance, made a :class:`StepHistory` (with the records
    it had) if it was a plain list, so what steps return on it is recorded."""
    info = context.info
    history = info.step_history
    if type(history) is not StepHistory:
        kept = StepHistory(StepLog(info.instance_id, info.workflow_id, 0.0))
        kept.extend(history)
        history = info.step_history = kept
    return history


def recorded_result(context: InstanceFields, node: str) -> Any:
    """What step ``node`` returned, as :func:`record_result` recorded it (None if nothing)."""
    instance = context._instance
    if type(instance) is InstanceInfo:
        history = instance.step_history
        if type(history) is not StepHistory:
            return None
        instance = history.log
    elif type(instance) is not StepLog:
        return None
    return instance.results.get(node) if instance.results else None


class InstanceFields:
    """The instance's id and litestar-workflows fields as a context shows them: read through
    its shared :class:`InstanceInfo`, made on first use when the context was made without
    them (then only the contexts forked after that share it)."""

    __slots__ = ("_instance",)
    _instance: Any  # the instance id, or the InstanceInfo holding it (see the module's doc)

    @property
    def instance_id(self) -> Any:
        instance = self._instance
        kind = type(instance)
        return instance.instance_id if kind is InstanceInfo or kind is StepLog else instance

    @instance_id.setter
    def instance_id(self, value: Any) -> None:
        if type(self._instance) is StepLog:
            self._instance = self._instance.instance_info()
        if type(self._instance) is InstanceInfo:
            self._instance.instance_id = value
        else:
            self._instance = value

    @property
    def info(self) -> InstanceInfo:
        """The instance's fields, shared by every context of the instance."""
        instance = self._instance
        if type(instance) is InstanceInfo:
            return instance
        if type(instance) is StepLog:
            info = self._instance = instance.instance_info()
            return info
        info = self._instance = InstanceInfo(instance)
        return info

    @property
    def workflow_id(self) -> Any:
        return self.info.workflow_id

    @property
    def metadata(self) -> dict[str, Any]:
        return self.info.metadata

    @property
    def step_history(self) -> list[StepExecution]:
        """The instance's step executions, oldest first."""
        history = self.info.step_history
        return history.sync() if type(history) is StepHistory else history

    def attach(self, log: StepLog) -> None:
        """Make ``log`` stand for this (root) context's instance: what an engine does when it
        starts an instance, so it and its forks show the instance's fields and history."""
        self._instance = log

    @property
    def started_at(self) -> datetime | None:
        return self.info.started_at

    @property
    def user_id(self) -> str | None:
        return self.info.user_id

    @property
    def tenant_id(self) -> str | None:
        return self.info.tenant_id

    def get_last_execution(self, step_name: str | None = None) -> StepExecution | None:
        """The latest execution of ``step_name`` (of any step when None), or None."""
        return self.info.last_execution(step_name)

    def has_step_executed(self, step_name: str) -> bool:
        return self.info.last_execution(step_name) is not None
