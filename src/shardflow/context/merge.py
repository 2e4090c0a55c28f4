"""MergeRules: how a join combines the writes of parallel branches (docs/SEMANTICS.md).

Apart from :mod:`shardflow.context.workflow` because it is the other half of a join: the
context logs its writes, these rules apply them. It reads the contexts' write logs and
parents directly (``_writes``, ``_parent``): both are the context package's own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from shardflow.context.workflow import _MISSING, WorkflowContext, check_json, common_ancestor
from shardflow.errors import MergeConflictError

Reducer = Callable[[Any, Any], Any]
_BY_EDGE = itemgetter(0)
"""Sort key of a join's arrivals, (edge index, source, context): declaration order."""


def _reduce_append(acc: Any, value: Any) -> Any:
    return [*acc, value]


def _reduce_extend(acc: Any, value: Any) -> Any:
    return [*acc, *value]


def _reduce_merge(acc: Any, value: Any) -> Any:
    return {**acc, **value}


BUILTIN_REDUCERS: dict[str, tuple[Any, Reducer]] = {
    # name: (initial accumulator or _MISSING to start from the first value, fold function)
    "append": ([], _reduce_append),
    "extend": ([], _reduce_extend),
    "merge": ({}, _reduce_merge),
    "sum": (_MISSING, lambda a, b: a + b),
    "max": (_MISSING, max),
    "min": (_MISSING, min),
}


class MergeRules:
    """How a join combines branch writes: ``policy`` is ``"error"`` (the default: two branches
    writing different values to one key raise :class:`MergeConflictError`) or ``"last_wins"``
    (declaration order); ``reducers`` fold the values the branches wrote to a key, in
    declaration order, with a built-in name or a ``callable(accumulated, value)``.
    """

    __slots__ = ("policy", "reducers")

    def __init__(
        self, policy: str = "error", reducers: Mapping[str, str | Reducer] | None = None
    ) -> None:
        self.policy = policy
        self.reducers: dict[str, tuple[Any, Reducer]] = {}
        for key, reducer in (reducers or {}).items():
            if isinstance(reducer, str):
                self.reducers[key] = BUILTIN_REDUCERS[reducer]
            else:
                self.reducers[key] = (_MISSING, reducer)

    def merge(
        self,
        base: WorkflowContext,
        branches: Sequence[tuple[str, WorkflowContext]],
        step: str | None = None,
    ) -> WorkflowContext:
        """A child of ``base`` holding every branch's writes, applied in the given order."""
        if not self.reducers:
            # The usual join: branches that wrote disjoint plain keys. Nothing can conflict
            # and no write moves another, so one ``update`` per branch is the whole merge:
            # no key was written twice if the union is as long as the logs, and no key has
            # a dot if their concatenation has none.
            fast: dict[str, Any] = {}
            written = 0
            for _, ctx in branches:
                writes = ctx._writes if ctx._parent is base else ctx.writes_since(base)
                written += len(writes)
                fast.update(writes)
            if len(fast) == written and "." not in "".join(fast):
                return base._child_applying(fast, False)
        return self._merge_writes(base, branches, step)

    def join(self, arrived: list[tuple[int, str, WorkflowContext]],
             step: str | None = None) -> WorkflowContext:
        """The contexts that arrived at a join, ``(edge index, source, context)`` each,
        merged in edge declaration order (``arrived`` is sorted in place): :meth:`merge` on
        their :func:`common_ancestor`.

        The usual join takes one pass: sibling forks of one context that wrote disjoint
        plain keys (no reducer) merge with one ``update`` each."""
        arrived.sort(key=_BY_EDGE)
        base = arrived[0][2]._parent
        if base is not None and not self.reducers:
            fast: dict[str, Any] = {}
            written = 0
            for _, _, ctx in arrived:
                if ctx._parent is not base:
                    break
                writes = ctx._writes
                written += len(writes)
                fast.update(writes)
            else:  # merge's fast path, inlined: delegating cost +2 % of a notify instance
                if len(fast) == written and "." not in "".join(fast):
                    return base._child_applying(fast, False)
        common = common_ancestor([ctx for _, _, ctx in arrived])
        if common is None:
            raise ValueError("the contexts arriving at a join share no ancestor")
        return self.merge(common, [(source, ctx) for _, source, ctx in arrived], step)

    def _merge_writes(
        self,
        base: WorkflowContext,
        branches: Sequence[tuple[str, WorkflowContext]],
        step: str | None,
    ) -> WorkflowContext:
        """:meth:`merge` in general: reducers, dotted keys, keys written by two branches."""
        merged: dict[str, Any] = {}
        owner: dict[str, str] = {}
        reduced: dict[str, list[Any]] = {}
        reducers = self.reducers
        check = self.policy != "last_wins"
        dotted = False  # does a key of ``merged`` (and so of ``owner``) contain a dot?
        for name, ctx in branches:
            writes = ctx._writes if ctx._parent is base else ctx.writes_since(base)
            for path, value in writes.items():
                if reducers and path in reducers:
                    reduced.setdefault(path, []).append(value)
                    continue
                if "." in path:
                    if check:
                        self._check_conflict(path, value, name, merged, owner, step)
                    dotted = True
                elif check:
                    if dotted:
                        self._check_conflict(path, value, name, merged, owner, step)
                    else:  # no dots on either side: only the same key can overlap
                        other = owner.get(path)
                        if other is not None and other != name and merged[path] != value:
                            raise MergeConflictError(path, [other, name], step)
                merged.pop(path, None)  # keep the order in which writes last happened
                merged[path] = value
                owner[path] = name
        for path, values in reduced.items():
            initial, fold = self.reducers[path]
            acc = values[0] if initial is _MISSING else initial
            for value in values[1:] if initial is _MISSING else values:
                acc = fold(acc, value)
            check_json(path, acc, step)
            merged[path] = acc
            dotted = dotted or "." in path
        return base._child_applying(merged, dotted)

    @staticmethod
    def _check_conflict(
        path: str,
        value: Any,
        name: str,
        merged: dict[str, Any],
        owner: dict[str, str],
        step: str | None,
    ) -> None:
        other = owner.get(path)
        if other is not None and other != name and merged[path] != value:
            raise MergeConflictError(path, [other, name], step)
        # A write to "a" and another branch's write to "a.b" overlap as well.
        prefix = path + "."
        for written, who in owner.items():
            if who == name:
                continue
            if written.startswith(prefix) or path.startswith(written + "."):
                raise MergeConflictError(min(path, written, key=len), [who, name], step)
