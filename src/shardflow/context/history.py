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
from datetime import datetime
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
        for execution in reversed(self.step_history):
            if step_name is None or execution.step_name == step_name:
                return execution
        return None


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
        return self.info.step_history

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
