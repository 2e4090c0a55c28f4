"""Validating human-task form data against its JSON Schema, listing every violation."""

from __future__ import annotations

from typing import Any

import orjson
from jsonschema import Draft202012Validator

_VALIDATORS: dict[bytes, Draft202012Validator] = {}


def form_violations(schema: dict[str, Any] | None, data: Any) -> list[str]:
    """Every way ``data`` violates ``schema``, each naming the field it concerns."""
    if not isinstance(data, dict):
        return [f"form data must be a JSON object, got {type(data).__name__}"]
    if schema is None:
        return []
    key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
    validator = _VALIDATORS.get(key)
    if validator is None:
        validator = _VALIDATORS[key] = Draft202012Validator(schema)
    problems = []
    for error in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.path))):
        where = ".".join(str(p) for p in error.path) or "(form)"
        problems.append(f"{where}: {error.message}")
    return problems
