"""WorkflowContext: the JSON data of one instance, with dotted paths, cheap forks and a write log.

Why copy-on-write: every branch of a fork must see its own snapshot, and copying a context per
branch (shallow ~25 %, orjson round-trip ~57 %, ``deepcopy`` ~75 % of fork/join throughput) is the
single largest cost an engine can add. A fork here copies nothing: children share the parent's
dicts and copy only the dicts on the path they write (path copying, as persistent maps do).
Each context also logs its own writes, so a join can apply branch writes in declaration order
and detect two branches writing different values to one key.

A context is made the guide's way, ``WorkflowContext(data, instance_id=...)``, or the
litestar-workflows way, with the seven fields of its dataclass (``workflow_id, instance_id,
data, metadata, current_step, step_history, started_at``, then ``user_id``, ``tenant_id``);
those besides the data are the instance's, shared by all its contexts (:mod:`.history`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, overload

from shardflow.context.history import InstanceFields, InstanceInfo, StepExecution
from shardflow.errors import ContextValueError
from shardflow.jsonvalue import I64_MIN, MAX_DEPTH, U64_MAX, find_problem, is_json, text_ok

_ALWAYS_JSON = frozenset({bool, type(None)})
"""Types whose every value is JSON. A write of one, of an int orjson writes or of a finite
float needs no call: that test is inlined where it is hot (``set``, ``__init__``)."""
_MISSING: Any = object()
_DECODED_SCALARS = frozenset({str, int, float, bool, type(None)})
"""The types of the values orjson decodes that are JSON by the contract whatever they hold."""
_new_object = object.__new__
_TOP_ONLY: frozenset[int] = frozenset()
"""``_owned`` of a context that owns its top dict and no nested one: no set to allocate (sets
are tracked by the garbage collector, and every written fork needs this)."""



def check_json(key: str, value: Any, step: str | None = None) -> None:
    """Raise :class:`ContextValueError` unless ``value`` is JSON by the data contract
    (:mod:`shardflow.jsonvalue`; docs/SEMANTICS.md), written at the dotted path ``key``."""
    # The context's top dict is one level, and each part of a dotted key one more.
    depth = MAX_DEPTH - 1 - key.count(".")
    if not is_json(value, depth):
        raise ContextValueError(key, find_problem(value, depth).describe(), step)


def check_input(data: Mapping[Any, Any]) -> None:
    """Raise :class:`ContextValueError` naming the key unless the initial data ``data`` of an
    instance obeys the data contract (what ``LocalExecutionEngine.start_workflow`` and
    ``BatchExecutor.submit`` are given)."""
    for key, value in data.items():
        if type(key) is not str:
            raise ContextValueError(repr(key), f"value under the {type(key).__name__} key "
                                    "(JSON object keys are strings)")
        if not (key.isascii() or text_ok(key)):  # text_ok's own first test, without a call
            raise ContextValueError(repr(key), "value under a key holding a lone surrogate "
                                    "(not UTF-8: orjson cannot write it)")
        cls = type(value)
        if not ((cls is str and value.isascii()) or cls in _ALWAYS_JSON
                or (cls is int and I64_MIN <= value <= U64_MAX)
                or (cls is float and value - value == 0.0)):
            check_json(key, value)


class WorkflowContext(InstanceFields):
    """The data of one workflow instance (or of one branch of it).

    ``get("a.b.c", default)`` and ``set("a.b", value)`` walk nested dicts. Values read with
    ``get`` are shared with sibling branches: change data with ``set``, never in place.
    """

    __slots__ = ("_data", "_owned", "_parent", "_writes", "current_step")
    # _owned: None when this context owns no dict (a fresh fork, or a context that has been
    # forked): the next write copies the top dict first. Otherwise it owns its top dict and
    # _owned holds the ids of the nested dicts it may change in place (_TOP_ONLY: none).
    # Forks are the hot path, so they allocate no set.
    _data: dict[str, Any]
    _owned: set[int] | frozenset[int] | None
    _parent: WorkflowContext | None
    _writes: dict[str, Any]
    current_step: str | None

    @overload
    def __init__(self, data: Mapping[str, Any] | None = None, *, instance_id: str = "") -> None: ...

    @overload
    def __init__(self, workflow_id: Any, instance_id: Any, data: Mapping[str, Any],
                 metadata: dict[str, Any], current_step: str | None,
                 step_history: list[StepExecution], started_at: datetime,
                 user_id: str | None = None, tenant_id: str | None = None) -> None: ...

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if len(args) <= 1 and kwargs.keys() <= _GUIDE_KEYWORDS and (
                not args or args[0] is None or isinstance(args[0], Mapping)):
            if args and "data" in kwargs:
                raise TypeError("WorkflowContext() got the data twice (positional and data=)")
            _make_root(self, args[0] if args else kwargs.get("data"),
                       kwargs.get("instance_id", ""))
            return
        (workflow_id, instance_id, data, metadata, current_step, step_history, started_at,
         user_id, tenant_id) = _litestar_form(*args, **kwargs)
        _make_root(self, data, instance_id)
        self.current_step = current_step
        self._instance = InstanceInfo(instance_id, workflow_id, metadata, step_history,
                                      started_at, user_id, tenant_id)

    @staticmethod
    def initial(data: Mapping[str, Any] | None, instance_id: str) -> WorkflowContext:
        """``WorkflowContext(data, instance_id=instance_id)``, as engines make the root
        context of every instance they start: without a class call (~40 % of its cost).
        Static, like :meth:`decoded`: a classmethod binds a method object per call."""
        ctx: WorkflowContext = _new_object(WorkflowContext)
        _make_root(ctx, data, instance_id)
        return ctx

    # -- reading ---------------------------------------------------------------------------
    def get(self, path: str, default: Any = None) -> Any:
        """The value at a dotted ``path``, or ``default`` if any part of it is missing."""
        if "." not in path:
            return self._data.get(path, default)
        node: Any = self._data
        for part in path.split("."):
            if type(node) is not dict:
                return default
            node = node.get(part, _MISSING)
            if node is _MISSING:
                return default
        return node

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and self.get(path, _MISSING) is not _MISSING

    def __getitem__(self, path: str) -> Any:
        value = self.get(path, _MISSING)
        if value is _MISSING:
            raise KeyError(path)
        return value

    def keys(self) -> Iterator[str]:
        return iter(self._data)

    @property
    def data(self) -> dict[str, Any]:
        """The whole data as a dict (shared, treat as read-only)."""
        return self._data

    def writes(self) -> dict[str, Any]:
        """The writes made through this context since it was forked, in order."""
        return self._writes

    # -- writing ---------------------------------------------------------------------------
    def set(self, path: str, value: Any) -> None:
        """Store a JSON ``value`` at a dotted ``path``, creating intermediate dicts."""
        cls = type(value)
        if not ((cls is str and value.isascii()) or cls in _ALWAYS_JSON
                or (cls is int and I64_MIN <= value <= U64_MAX)
                or (cls is float and value - value == 0.0)):  # value - value: 0.0 iff finite
            # check_json, inlined: a container is written by most steps.
            depth = MAX_DEPTH - 1 - path.count(".") if "." in path else MAX_DEPTH - 1
            if not is_json(value, depth):
                raise ContextValueError(path, find_problem(value, depth).describe(),
                                        self.current_step)
        if "." in path:
            self._assign(path, value)
        elif self._owned is None:  # _take_top, inlined: the first write of every fork
            data = self._data = dict(self._data)
            self._owned = _TOP_ONLY
            data[path] = value
        else:
            self._data[path] = value
        writes = self._writes
        if path in writes:
            del writes[path]  # keep the log in the order writes last happened
        writes[path] = value

    def update(self, values: Mapping[str, Any]) -> None:
        """``set`` every key of ``values``."""
        for key, value in values.items():
            self.set(key, value)

    def _take_top(self) -> dict[str, Any]:
        """Copy the shared top dict so this context can change it; return the copy."""
        data = self._data = dict(self._data)
        self._owned = _TOP_ONLY
        return data

    def _assign(self, path: str, value: Any) -> None:
        owned = self._owned
        if owned is None:
            data = self._take_top()
            owned = _TOP_ONLY
        else:
            data = self._data
        if "." not in path:
            data[path] = value
            return
        parts = path.split(".")
        node = data
        for part in parts[:-1]:
            child = node.get(part)
            if type(child) is not dict:
                child = {}
            elif id(child) in owned:
                node = child
                continue
            else:
                child = dict(child)  # shared with a parent or sibling: copy the path
            if not isinstance(owned, set):
                owned = self._owned = set()
            owned.add(id(child))
            node[part] = child
            node = child
        node[parts[-1]] = value

    # -- forking and merging ----------------------------------------------------------------
    def fork(self) -> WorkflowContext:
        """A child that sees this context's data and writes only to itself."""
        # What __init__(instance_id=..., _parent=self, _shared=self._data) does, without the
        # call: one fork per branch per instance makes this the hottest constructor.
        child: WorkflowContext = _new_object(WorkflowContext)
        child._instance = self._instance
        child.current_step = None
        child._parent = self
        child._writes = {}
        child._data = self._data
        child._owned = None
        # The parent must not change under its children: it gives up ownership too.
        self._owned = None
        return child

    def with_step(self, step_name: str) -> WorkflowContext:
        """A fork of this context whose ``current_step`` is ``step_name``. Like every fork it
        sees this context's data, and its writes are its own (copy-on-write): they do not
        show in this context, as they do in litestar-workflows (docs/PORTING.md)."""
        child = self.fork()
        child.current_step = step_name
        return child

    @staticmethod
    def decoded(data: dict[str, Any], instance_id: str) -> WorkflowContext:
        """A root context for ``data`` fresh from ``orjson.loads`` (a batch worker's input).

        orjson makes nothing the data contract refuses but depth: its keys are ``str``, its
        text is UTF-8, its floats finite, its integers 64-bit (larger ones come back as
        floats). So only an input holding containers is checked (:func:`check_input`), and
        a flat one, the usual input, costs no Python loop."""
        ctx: WorkflowContext = _new_object(WorkflowContext)
        ctx._instance = instance_id
        ctx.current_step = None
        ctx._parent = None
        ctx._writes = {}
        ctx._data = dict(data)
        ctx._owned = _TOP_ONLY
        for value in data.values():
            if type(value) not in _DECODED_SCALARS:
                check_input(ctx._data)
                break
        return ctx

    @classmethod
    def restored(cls, data: dict[str, Any], writes: Mapping[str, Any], *,
                 instance_id: str) -> WorkflowContext:
        """A root context as a snapshot recorded it: its data (which already holds its
        writes) and its own write log, so joins after a restore see the same writes."""
        ctx = cls(data, instance_id=instance_id)
        ctx._writes = dict(writes)
        return ctx

    def child_with(self, writes: Mapping[str, Any]) -> WorkflowContext:
        """A child of this context with ``writes`` applied (used by joins and retries)."""
        return self._child_applying(dict(writes), any("." in path for path in writes))

    def _child_applying(self, writes: dict[str, Any], dotted: bool) -> WorkflowContext:
        """``child_with`` for a ``writes`` dict the child keeps as its log; ``dotted`` says
        whether a key has a dot (else one copy and one update apply them all)."""
        if dotted:
            child = self.fork()
            for path, value in writes.items():
                child._assign(path, value)
            child._writes = writes
            return child
        # fork and _take_top, inlined: every join of every instance makes one of these.
        child = _new_object(WorkflowContext)
        child._instance = self._instance
        child.current_step = None
        child._parent = self
        child._writes = writes
        if writes:
            data = child._data = dict(self._data)
            data.update(writes)
            child._owned = _TOP_ONLY
        else:
            child._data = self._data
            child._owned = None
        self._owned = None  # the parent must not change under its child
        return child

    def writes_since(self, ancestor: WorkflowContext | None) -> dict[str, Any]:
        """All writes on the chain from ``ancestor`` (exclusive) to this context, in order."""
        if self._parent is ancestor:  # a branch forked straight from the fork point
            return self._writes
        chain: list[WorkflowContext] = []
        node: WorkflowContext | None = self
        while node is not None and node is not ancestor:
            chain.append(node)
            node = node._parent
        if len(chain) == 1:
            return chain[0]._writes
        combined: dict[str, Any] = {}
        for ctx in reversed(chain):
            for path, value in ctx._writes.items():
                combined.pop(path, None)
                combined[path] = value
        return combined

    def detach(self) -> None:
        """Forget the contexts this one was forked from, for a context no join will read
        again (a finished instance's): its data already holds all it sees, and a kept
        finished instance then keeps one context alive, not its whole chain."""
        self._parent = None

    def ancestors(self) -> Iterator[WorkflowContext]:
        node: WorkflowContext | None = self
        while node is not None:
            yield node
            node = node._parent

    def __repr__(self) -> str:
        return f"WorkflowContext({self._data!r})"


def _make_root(ctx: WorkflowContext, data: Mapping[str, Any] | None, instance_id: str) -> None:
    """Fill ``ctx`` as the root context of an instance holding a copy of ``data``, checked
    against the data contract (``__init__`` and :meth:`WorkflowContext.initial`)."""
    ctx._instance = instance_id
    ctx.current_step = None
    ctx._parent = None
    ctx._writes = {}
    copy = ctx._data = dict(data) if data else {}
    check_input(copy)
    ctx._owned = _TOP_ONLY


_GUIDE_KEYWORDS = frozenset({"data", "instance_id"})


def _litestar_form(workflow_id: Any, instance_id: Any, data: Mapping[str, Any],
                   metadata: dict[str, Any], current_step: str | None,
                   step_history: list[StepExecution], started_at: datetime,
                   user_id: str | None = None, tenant_id: str | None = None) -> tuple[Any, ...]:
    """The arguments of litestar-workflows' ``WorkflowContext(...)``, bound by Python itself
    (so a missing or unknown one is reported as for any call)."""
    return (workflow_id, instance_id, data, metadata, current_step, step_history, started_at,
            user_id, tenant_id)


_litestar_form.__qualname__ = "WorkflowContext"


def common_ancestor(contexts: Sequence[WorkflowContext]) -> WorkflowContext | None:
    """The deepest context that every one of ``contexts`` descends from (or is)."""
    head = contexts[0]
    parent = head._parent
    if parent is not None and len(contexts) > 1:
        # The usual join: sibling forks of one context. Their parent, unless all are ``head``.
        for ctx in contexts:
            if ctx._parent is not parent:
                break
        else:
            return parent if any(ctx is not head for ctx in contexts) else head
    first = list(head.ancestors())
    depth = {id(c): i for i, c in enumerate(first)}
    deepest = 0
    for ctx in contexts[1:]:
        for anc in ctx.ancestors():
            index = depth.get(id(anc))
            if index is not None:
                deepest = max(deepest, index)
                break
        else:
            return None
    return first[deepest]
