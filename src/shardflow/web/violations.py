"""Form data checked against a task's ``form_schema``, each violation with its JSON pointer.

The CLI's ``engine.forms.form_violations`` returns sentences; the page needs to place each
message next to its field, so this module reports the same Draft 2020-12 validation as
``(pointer, message)`` pairs (RFC 6901 pointers, ``""`` for the whole form).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from jsonschema import Draft202012Validator, ValidationError
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource, Unresolvable

from shardflow.jsonvalue import MAX_DEPTH, problem

_VALIDATORS: dict[bytes, Draft202012Validator] = {}


def _no_retrieval(uri: str) -> Resource[Any]:
    """Form schemas resolve only ``$ref``s inside themselves: nothing is fetched (no request
    to another host on each validation, nothing read from disk)."""
    raise NoSuchResource(uri)


LOCAL_ONLY: Registry[Any] = Registry(retrieve=_no_retrieval)  # type: ignore[call-arg]


@dataclass(frozen=True, slots=True)
class Violation:
    pointer: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"pointer": self.pointer, "message": self.message}


def pointer(path: Iterable[Any]) -> str:
    """The RFC 6901 JSON pointer of a path of keys and indexes."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


def _located(error: ValidationError, missing: list[str]) -> Violation:
    path = list(error.absolute_path)
    if error.validator == "required" and missing:
        # A "required" error sits on the object; the page shows it on the missing field.
        # jsonschema reports one error per missing name, in the schema's order.
        path.append(missing.pop(0))
    return Violation(pointer(path), error.message)


def form_violations(schema: dict[str, Any] | None, data: Any) -> list[Violation]:
    """Every way ``data`` violates ``schema``, sorted by where it is."""
    if not isinstance(data, dict):
        return [Violation("", f"form data must be a JSON object, got {type(data).__name__}")]
    # The data contract first, as the CLI's check does (engine.forms): the data is stored
    # two levels below the context's top, and a value the context refuses would fail the
    # resumed instance instead of leaving the task open.
    found = problem(data, MAX_DEPTH - 1)
    if found is not None:
        return [Violation(pointer(found.path), f"{found._replace(path=()).describe()} is not JSON")]
    if schema is None:
        return []
    key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
    validator = _VALIDATORS.get(key)
    if validator is None:
        validator = _VALIDATORS[key] = Draft202012Validator(schema, registry=LOCAL_ONLY)
    try:
        errors = sorted(validator.iter_errors(data),
                        key=lambda e: [str(p) for p in e.absolute_path])
    except Unresolvable as exc:
        return [Violation("", f"the task's form schema refers to {exc.ref!r} outside itself; "
                              "only local $refs ('#/...') are resolved")]
    missing: dict[str, list[str]] = {}
    for error in errors:
        if error.validator == "required" and isinstance(error.instance, dict):
            where = pointer(error.absolute_path)
            if where not in missing:
                missing[where] = [name for name in error.validator_value
                                  if name not in error.instance]
    return [_located(error, missing.get(pointer(error.absolute_path), [])) for error in errors]
