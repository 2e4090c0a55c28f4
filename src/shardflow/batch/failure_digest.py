"""Which instances failed, and why, in bounded memory: for each (step, error type), the most
common messages with up to three example ids each.

The workers count failures by step and type; a count alone leaves the user to dig the ids
and messages out of the output with jq. The coordinator hands every failed or invalid
result line here (decoding only those: a successful instance costs nothing), and the summary
shows the digest with the command that lists them all (``shardflow runs show RUN --failed``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

MAX_GROUPS = 100
"""Distinct (step, type, message) kept; later new messages are counted, not shown."""
MAX_IDS = 3
MAX_MESSAGE = 200


@dataclass(slots=True)
class _Group:
    count: int = 0
    ids: list[Any] = field(default_factory=list)


def failure_key(record: dict[str, Any], limit: int | None = MAX_MESSAGE) -> tuple[str, str, str]:
    """(step, error type, message) of a failed or invalid result record, as summaries and
    ``runs show`` name them: no step is ``<input>`` for input that is not an instance and
    ``<worker>`` for an instance that took its worker down. The message is one line, cut at
    ``limit`` characters."""
    error = record.get("error") or {}
    kind = str(error.get("type") or "?")
    step = error.get("step") or ("<input>" if record.get("status") == "invalid_input" else "<worker>")
    message = " ".join(str(error.get("message") or "").split())
    if limit is not None and len(message) > limit:
        message = message[:limit - 3] + "..."
    return str(step), kind, message


class FailureDigest:
    """Fed failed result lines; :meth:`to_list` is the summary's ``failure_examples``."""

    def __init__(self) -> None:
        self._groups: dict[tuple[str, str, str], _Group] = {}
        self.unshown = 0
        """Failures whose message was new once :data:`MAX_GROUPS` were kept."""

    def add_line(self, line: bytes) -> None:
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            return
        if isinstance(record, dict):
            self.add(record)

    def add(self, record: dict[str, Any]) -> None:
        key = failure_key(record)
        group = self._groups.get(key)
        if group is None:
            if len(self._groups) >= MAX_GROUPS:
                self.unshown += 1
                return
            group = self._groups[key] = _Group()
        group.count += 1
        if len(group.ids) < MAX_IDS:
            group.ids.append(record.get("id"))

    def __bool__(self) -> bool:
        return bool(self._groups)

    def to_list(self) -> list[dict[str, Any]]:
        """One entry per (step, type, message): by step, its most common error type first,
        and within a type the most common message first."""
        per_type: dict[tuple[str, str], int] = {}
        for (step, kind, _), group in self._groups.items():
            per_type[step, kind] = per_type.get((step, kind), 0) + group.count
        ordered = sorted(self._groups.items(), key=lambda kv: (
            kv[0][0], -per_type[kv[0][0], kv[0][1]], kv[0][1], -kv[1].count))
        return [{"step": step, "type": kind, "message": message, "count": g.count,
                 "ids": list(g.ids)} for (step, kind, message), g in ordered]

    def render(self, per_type: int = 3) -> list[str]:
        """Summary lines: under each step and type, its ``per_type`` most common messages."""
        lines: list[str] = []
        shown: dict[tuple[str, str], int] = {}
        for entry in self.to_list():
            where = (entry["step"], entry["type"])
            shown[where] = shown.get(where, 0) + 1
            if shown[where] > per_type:
                continue
            ids = ", ".join(orjson.dumps(i).decode() for i in entry["ids"])
            more = ", ..." if entry["count"] > len(entry["ids"]) else ""
            lines.append(f"    {entry['step']} {entry['type']} x{entry['count']}: "
                         f"{entry['message'] or '(no message)'} (ids {ids}{more})")
        if self.unshown:
            lines.append(f"    ... and {self.unshown} more with other messages")
        return lines
