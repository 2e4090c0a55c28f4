"""WorkflowRegistry: validated definitions by name and version."""

from __future__ import annotations

import re

from shardflow._text import did_you_mean
from shardflow.errors import WorkflowNotFoundError
from shardflow.model.definition import WorkflowDefinition


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
        """name -> highest version, kept up to date by ``register_definition``: starting an
        instance by name alone must not parse and sort every version each time."""

    def register_definition(self, definition: WorkflowDefinition) -> None:
        """Validate ``definition`` (raising one error listing every problem) and keep it."""
        _ = definition.plan
        versions = self._definitions.setdefault(definition.name, {})
        versions[definition.version] = definition
        self._latest[definition.name] = versions[max(versions, key=version_key)]

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

    def list_definitions(self) -> list[WorkflowDefinition]:
        """The highest version of every workflow, by name."""
        return [self.get_definition(name) for name in sorted(self._definitions)]

    def versions(self, name: str) -> list[str]:
        return sorted(self._definitions.get(name, {}), key=version_key)

    def __contains__(self, name: object) -> bool:
        return name in self._definitions
