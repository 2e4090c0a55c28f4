"""WorkflowRegistry: validated definitions by name and version.

A definition is registered as it is (``register_definition``) or, the litestar-workflows way,
as a workflow class whose ``get_definition()`` returns it (``register``); the registry then
also answers which class a workflow came from.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from shardflow._text import did_you_mean
from shardflow.errors import WorkflowNotFoundError
from shardflow.model.definition import WorkflowDefinition


class WorkflowClass(Protocol):
    """What ``register`` takes besides a definition: anything with ``get_definition()``
    (litestar-workflows' workflow classes)."""

    def get_definition(self) -> WorkflowDefinition: ...


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key for semantic versions: numeric parts compare as numbers (10.0.0 > 9.0.0)."""
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"[.\-+]", version)
    )


class WorkflowRegistry:
    """Keeps every registered version of every workflow; registering validates."""

    def __init__(self) -> None:
        self._definitions: dict[str, dict[str, WorkflowDefinition]] = {}
        self._latest: dict[str, WorkflowDefinition] = {}
        """name -> highest version, kept up to date by every change: starting an instance by
        name alone must not parse and sort every version each time."""
        self._classes: dict[tuple[str, str], Any] = {}
        """(name, version) -> the workflow class it was registered from."""

    def register(self, workflow: WorkflowClass | type | WorkflowDefinition) -> WorkflowDefinition:
        """Validate and keep the definition of ``workflow``: a :class:`WorkflowDefinition`, or
        a class (or object) whose ``get_definition()`` returns one. Registering a name and
        version again replaces it. Returns the definition."""
        if isinstance(workflow, WorkflowDefinition):
            self.register_definition(workflow)
            return workflow
        get_definition = getattr(workflow, "get_definition", None)
        if get_definition is None:
            raise TypeError(f"register() takes a WorkflowDefinition or a workflow class with "
                            f"get_definition(), not {workflow!r}")
        definition = get_definition()
        if not isinstance(definition, WorkflowDefinition):
            raise TypeError(f"{workflow!r}.get_definition() returned {type(definition).__name__}"
                            ", not a WorkflowDefinition")
        self.register_definition(definition)
        self._classes[(definition.name, definition.version)] = workflow
        return definition

    def register_definition(self, definition: WorkflowDefinition) -> None:
        """Validate ``definition`` (raising one error listing every problem) and keep it."""
        _ = definition.plan
        versions = self._definitions.setdefault(definition.name, {})
        versions[definition.version] = definition
        self._classes.pop((definition.name, definition.version), None)
        self._latest[definition.name] = versions[max(versions, key=version_key)]

    def unregister(self, name: str, version: str | None = None) -> None:
        """Forget ``version`` of workflow ``name``, or every version when None. Forgetting
        what is not registered does nothing. Running instances keep their definition."""
        versions = self._definitions.get(name, {})
        for gone in list(versions) if version is None else [version]:
            versions.pop(gone, None)
            self._classes.pop((name, gone), None)
        if versions:
            self._latest[name] = versions[max(versions, key=version_key)]
        else:
            self._definitions.pop(name, None)
            self._latest.pop(name, None)

    def get_definition(self, name: str, version: str | None = None) -> WorkflowDefinition:
        """The definition ``name`` at ``version``, or its highest version when none is given."""
        if version is None:
            latest = self._latest.get(name)
            if latest is None:
                raise WorkflowNotFoundError(name, version, hint=did_you_mean(name, self._latest))
            return latest
        versions = self._definitions.get(name)
        if not versions:
            raise WorkflowNotFoundError(name, version, hint=did_you_mean(name, self._latest))
        try:
            return versions[version]
        except KeyError:
            raise WorkflowNotFoundError(name, version) from None

    def get_workflow_class(self, name: str, version: str | None = None) -> Any:
        """The class ``name`` (at ``version``, or its highest version) was registered from;
        :class:`WorkflowNotFoundError` if that version was registered as a definition."""
        definition = self.get_definition(name, version)
        try:
            return self._classes[(name, definition.version)]
        except KeyError:
            raise WorkflowNotFoundError(name, definition.version) from None

    def has_workflow(self, name: str, version: str | None = None) -> bool:
        versions = self._definitions.get(name, {})
        return bool(versions) if version is None else version in versions

    def list_definitions(self, active_only: bool = True) -> list[WorkflowDefinition]:
        """The highest version of every workflow by name; every version with
        ``active_only=False`` (by name, then version)."""
        if active_only:
            return [self._latest[name] for name in sorted(self._latest)]
        return [self._definitions[name][v] for name in sorted(self._definitions)
                for v in self.versions(name)]

    def versions(self, name: str) -> list[str]:
        """The registered versions of ``name``, lowest first; none if it is unknown."""
        return sorted(self._definitions.get(name, {}), key=version_key)

    def get_versions(self, name: str) -> list[str]:
        """:meth:`versions`, raising :class:`WorkflowNotFoundError` for an unknown name."""
        if name not in self._definitions:
            raise WorkflowNotFoundError(name)
        return self.versions(name)

    def __contains__(self, name: object) -> bool:
        return name in self._definitions
