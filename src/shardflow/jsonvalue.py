"""The data contract: what a JSON value is, for contexts, inputs, form data and form schemas.

A value is JSON when writing it with orjson and reading it back gives the same value, of the
same types: dicts with ``str`` keys, lists, ``str``, ``int`` from -2**63 to 2**64-1, finite
``float``, ``bool`` and ``None`` (exact types, no subclasses), at most :data:`MAX_DEPTH`
containers deep. Everything else is refused rather than converted, because the first snapshot,
result file or batch worker would convert it differently than the process that wrote it: NaN
and Infinity would come back as ``null``, a tuple as a list, a date as a string, an ``Enum`` as
its plain value, and orjson cannot write a larger integer at all. One definition, used by the
in-process engine and the batch workers alike, keeps the two modes from disagreeing.

:func:`is_json` is on the hot path (every context write that is not a ``str``, ``bool``, or
in-range ``int`` or finite ``float``); :func:`problem` describes what it refused.
"""

from __future__ import annotations

from datetime import date, time
from enum import Enum
from typing import Any, NamedTuple

I64_MIN = -(1 << 63)
"""The smallest integer orjson writes (signed 64 bits)."""
U64_MAX = (1 << 64) - 1
"""The largest integer orjson writes (unsigned 64 bits)."""
MAX_DEPTH = 200
"""Containers a context may nest, its top dict included. orjson writes at most 254; result
lines put a context 2 levels down and snapshots 5, so 200 leaves room for both."""


class Problem(NamedTuple):
    """Why a value is not JSON: ``path`` to the offending part (keys and list indices, empty
    for the value itself), what that part is (``noun``) and why it is refused (``why``)."""

    path: tuple[str | int, ...]
    noun: str
    why: str

    def describe(self) -> str:
        """``"float NaN at 'payload[2]' (NaN and Infinity have no JSON form)"``: the path is
        quoted, so a key named ``at`` reads ``a datetime at 'at'``."""
        where = f" at {render_path(self.path)!r}" if self.path else ""
        because = f" ({self.why})" if self.why else ""
        return f"{self.noun}{where}{because}"


def text_ok(text: str) -> bool:
    """Whether orjson can write ``text``: every ``str`` but one holding a lone surrogate
    (``"\\ud800"``, which ``surrogateescape`` decoding or a bad slice can make). ``isascii`` is
    O(1) in CPython, so the common case costs nothing."""
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def is_json(value: Any, depth: int = MAX_DEPTH) -> bool:
    """Whether ``value`` is JSON by the contract, at most ``depth`` containers deep.

    The hot path: exact types compared with ``is``, the common scalars handled inline in the
    loops (a call per element would cost more than the check), recursion only into
    containers. :func:`problem` says what is wrong once this says something is."""
    cls = type(value)
    if cls is dict:
        if depth <= 0:
            return False
        for key, item in value.items():
            if type(key) is not str or not (key.isascii() or text_ok(key)):
                return False
            kind = type(item)
            if kind is str:
                if item.isascii() or text_ok(item):
                    continue
                return False
            if kind is bool or item is None:
                continue
            if kind is int:
                if I64_MIN <= item <= U64_MAX:
                    continue
                return False
            if kind is float:
                if item - item == 0.0:  # finite: inf - inf and nan - nan are nan
                    continue
                return False
            if not is_json(item, depth - 1):
                return False
        return True
    if cls is list:
        if depth <= 0:
            return False
        for item in value:
            kind = type(item)
            if kind is str:
                if item.isascii() or text_ok(item):
                    continue
                return False
            if kind is bool or item is None:
                continue
            if kind is int:
                if I64_MIN <= item <= U64_MAX:
                    continue
                return False
            if kind is float:
                if item - item == 0.0:
                    continue
                return False
            if not is_json(item, depth - 1):
                return False
        return True
    if cls is str:
        return text_ok(value)
    if cls is bool or value is None:
        return True
    if cls is int:
        return bool(I64_MIN <= value <= U64_MAX)
    if cls is float:
        return bool(value - value == 0.0)
    return False


def problem(value: Any, depth: int = MAX_DEPTH) -> Problem | None:
    """``None`` if ``value`` is JSON by the contract (``depth`` containers deep at most), else
    the first :class:`Problem` in it."""
    return None if is_json(value, depth) else find_problem(value, depth)


def find_problem(value: Any, depth: int = MAX_DEPTH) -> Problem:
    """The first problem of a value :func:`is_json` refused (slow: builds the description)."""
    cls = type(value)
    if cls is dict or cls is list:
        if depth <= 0:
            return _too_deep(value)
        pairs = value.items() if cls is dict else enumerate(value)
        for key, item in pairs:
            if type(key) is not str and cls is dict:
                return Problem((), f"dict with the {type(key).__name__} key {key!r}",
                               "JSON object keys are strings")
            if cls is dict and isinstance(key, str) and not text_ok(key):
                return Problem((), f"dict with the key {key!r}", _SURROGATE)
            if not is_json(item, depth - 1):
                found = find_problem(item, depth - 1)
                return found._replace(path=(key, *found.path))
    return _leaf(value)


def render_path(path: tuple[str | int, ...]) -> str:
    """``("payload", 2, "x")`` as ``payload[2].x``; a long path (too deep a value) keeps its
    first and last parts."""
    if len(path) > 8:
        return f"{render_path(path[:4])}...({len(path) - 6} more)...{render_path(path[-2:])}"
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


_SURROGATE = ("it holds a lone surrogate, which is not UTF-8: orjson cannot write it "
              "(decode the bytes it came from with errors='replace')")


def _too_deep(value: Any) -> Problem:
    return Problem((), f"{type(value).__name__} nested more than {MAX_DEPTH} levels deep",
                   "or holding itself; orjson writes at most 254 levels")


def _leaf(value: Any) -> Problem:
    """What is wrong with a value that is not a JSON container."""
    cls = type(value)
    name = cls.__name__
    if cls is str:
        return Problem((), f"str {value!r}", _SURROGATE)
    if cls is float:
        return Problem((), f"float {value!r}", "NaN and Infinity have no JSON form; orjson "
                                                "would write null")
    if cls is int:
        return Problem((), f"number {value}", "Integer exceeds 64-bit range: orjson writes "
                                           "-2**63 to 2**64-1; store it as a string")
    if cls is tuple:
        return Problem((), "tuple", "it would come back as a list; use a list")
    if cls is set or cls is frozenset:
        return Problem((), name, "JSON has no sets; use a list")
    if cls is bytes or cls is bytearray:
        return Problem((), name, "JSON has no bytes; decode or base64-encode them")
    if isinstance(value, date | time):
        return Problem((), name, "it would come back as a string; store value.isoformat()")
    if isinstance(value, Enum):
        return Problem((), f"{name} member", "it would come back as its plain value; store "
                                             "member.value")
    for base in (int, float, str, list, dict):
        if isinstance(value, base):
            return Problem((), f"{name} (a {base.__name__} subclass)",
                           f"it would come back as a plain {base.__name__}")
    return Problem((), name, "")
