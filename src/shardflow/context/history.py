"""What a context knows of its instance besides its data: litestar-workflows' fields.

A :class:`WorkflowContext` made the litestar-workflows way carries the workflow's id, the
instance's metadata, the history of its step executions, when it started, and the user and
tenant it runs for. They describe the instance, not a branch of it, so every context of one
instance shares one :class:`InstanceInfo`.

Why one slot, ``_instance``, holds either the instance's id or its :class:`InstanceInfo`:
a context knows its instance by id alone unless one of these fields is given or read, and
engines make several contexts per instance (one per fork and join). Keeping the id and the
fields in the one slot the id always had lets a fork copy one reference, as it did before
the fields existed; a second slot, filled by every fork and join, slowed every in-process
instance measurably (docs/PERFORMANCE.md, issue 20's first part).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol


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


@dataclass(slots=True, frozen=True)
class FormData:
    """How the step log's results hold a completed human step's form data: its record's
    ``result`` and ``output_data``, as litestar-workflows records a human step (a return
    value is only a ``result``)."""

    data: dict[str, Any]


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


class HistorySource(Protocol):
    """What a step history is read from: an engine's record of one instance (shardflow's
    ``WorkflowInstance`` is one). ``steps`` is its step log, (node, status, attempt, started,
    ended, error) entries; ``results`` the return values of its steps by node id, made when
    a step first returns something; ``info`` the instance's fields once a context read them."""

    workflow_name: str
    steps: list[Any]
    started_at: float
    results: dict[str, Any] | None
    info: InstanceInfo | None


class SourceIndex(Protocol):
    """Where an engine finds the record of an instance it knows (its instance window)."""

    def get(self, instance_id: str) -> HistorySource | None: ...


INDEXES: weakref.WeakSet[SourceIndex] = weakref.WeakSet()
"""The instance indexes of this process's engines (each registers its window). A context
knows its instance by id alone, so starting an instance makes no object for fields and a
history nobody may read, and registers nothing: a context that reads them, or records a
step's return value, finds its instance's record here (:func:`find_source`)."""


def find_source(instance_id: Any) -> HistorySource | None:
    """The record of the instance ``instance_id`` an engine of this process knows, if any."""
    for index in INDEXES:
        try:
            source = index.get(instance_id)
        except TypeError:  # an unhashable id, given by hand: no engine made it
            return None
        if source is not None:
            return source
    return None


@dataclass(slots=True)
class DetachedSource:
    """The history source of a context no engine knows (``execute_step`` on a context made
    by hand): no step log, only what is appended to the history."""

    workflow_name: str = ""
    steps: list[Any] = field(default_factory=list)
    started_at: float = 0.0
    results: dict[str, Any] | None = None
    info: InstanceInfo | None = None


def source_info(instance_id: Any, source: HistorySource) -> InstanceInfo:
    """The fields of the instance ``source`` records, made on first use and shared by every
    context of it."""
    info = source.info
    if info is None:
        info = source.info = InstanceInfo(instance_id, source.workflow_name, {},
                                          StepHistory(source), started_moment(source.started_at))
    return info


class StepHistory(list[StepExecution]):
    """``context.step_history`` of an instance an engine runs: the :class:`StepExecution`
    records of its step log, made when the history is read (:meth:`sync`), so a step pays
    nothing for a history nobody reads. Records appended by hand stay in place."""

    __slots__ = ("seen", "source")

    def __init__(self, source: HistorySource) -> None:
        super().__init__()
        self.source = source
        self.seen = 0

    @property
    def results(self) -> dict[str, Any]:
        """The steps' return values by node id (those that returned something)."""
        source = self.source
        results = source.results
        if results is None:
            results = source.results = {}
        return results

    def sync(self) -> StepHistory:
        """Append the records of the log entries made since the last call; return self."""
        log = self.source.steps
        if self.seen < len(log):
            results = self.source.results or {}
            for node, status, _attempt, started, ended, error in log[self.seen:]:
                result = results.get(node) if status == "completed" else None
                output = None
                if type(result) is FormData:
                    result = output = result.data
                self.append(StepExecution(
                    node, _STEP_STATUS.get(status, status), started_moment(started),
                    started_moment(ended), result, error, None, output))
            self.seen = len(log)
        return self


_STEP_STATUS = {"completed": "succeeded"}
"""Step log statuses whose StepStatus value differs."""


def started_moment(when: float) -> datetime:
    """``when`` (seconds since the epoch) as an aware UTC datetime, as histories show it."""
    return datetime.fromtimestamp(when, UTC)


def _source_of(context: InstanceFields) -> HistorySource | None:
    """The history source of ``context``'s instance, if an engine keeps one. Found by id,
    the context then holds the instance's fields, so its later forks find them at once."""
    instance = context._instance
    if type(instance) is InstanceInfo:
        history = instance.step_history
        return history.source if type(history) is StepHistory else None
    source = find_source(instance)
    if source is not None:
        context._instance = source_info(instance, source)
    return source


def record_result(context: InstanceFields, node: str, result: Any) -> None:
    """Record what step ``node`` returned in the history of ``context``'s instance, if an
    engine keeps one for it (a context made by hand has no step log to attach it to)."""
    source = _source_of(context)
    if source is not None:
        results = source.results
        if results is None:
            results = source.results = {}
        results[node] = result


def recorded_result(context: InstanceFields, node: str) -> Any:
    """What step ``node`` returned, as :func:`record_result` recorded it (None if nothing)."""
    source = _source_of(context)
    results = source.results if source is not None else None
    return results.get(node) if results else None


def results_kept(context: InstanceFields) -> StepHistory:
    """The history of ``context``'s instance, made a :class:`StepHistory` (with the records
    it had) if it was a plain list, so what steps return on it is recorded."""
    info = context.info
    history = info.step_history
    if type(history) is not StepHistory:
        kept = StepHistory(DetachedSource())
        kept.extend(history)
        history = info.step_history = kept
    return history


class InstanceFields:
    """The instance's id and litestar-workflows fields as a context shows them: read through
    its shared :class:`InstanceInfo`, made on first use when the context was made without
    them (then only the contexts forked after that share it)."""

    __slots__ = ("_instance",)
    _instance: Any  # the instance id, or the InstanceInfo holding it (see the module's doc)

    @property
    def instance_id(self) -> Any:
        instance = self._instance
        return instance.instance_id if type(instance) is InstanceInfo else instance

    @instance_id.setter
    def instance_id(self, value: Any) -> None:
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
        source = find_source(instance)
        info = self._instance = (InstanceInfo(instance) if source is None
                                 else source_info(instance, source))
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
