"""Validating human-task form data against its JSON Schema, listing every violation.

Form data becomes context data, so it is held to the data contract too (a NaN would pass
``{"type": "number"}``): refused here, it leaves the task open instead of failing the resumed
instance. jsonschema is imported on the first validation, not when shardflow is imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from shardflow.jsonvalue import MAX_DEPTH, problem, render_path

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

_VALIDATORS: dict[bytes, Draft202012Validator] = {}


def form_violations(schema: dict[str, Any] | None, data: Any) -> list[str]:
    """Every way ``data`` violates ``schema``, each naming the field it concerns."""
    if not isinstance(data, dict):
        return [f"form data must be a JSON object, got {type(data).__name__}"]
    # The data is stored under the step's node id: two levels below the context's top.
    found = problem(data, MAX_DEPTH - 1)
    if found is not None:
        where = render_path(found.path) or "(form)"
        return [f"{where}: {found._replace(path=()).describe()} is not JSON"]
    if schema is None:
        return []
    key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
    validator = _VALIDATORS.get(key)
    if validator is None:
        from jsonschema import Draft202012Validator

        validator = _VALIDATORS[key] = Draft202012Validator(schema)
    problems = []
    for error in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.path))):
        where = ".".join(str(p) for p in error.path) or "(form)"
        problems.append(f"{where}: {error.message}")
    return problems
