"""String edge conditions: a small expression language over the context, checked once.

``Edge("review", "publish", condition="approved and order.total < 1000")`` is taken when the
expression is true for the context the edge leaves with. litestar-workflows accepts such
strings and treats every one as true; shardflow evaluates them. The grammar (the rules users
read are in docs/SEMANTICS.md, "String edge conditions"):

* a bare name or a dotted name is a context key or path: ``approved`` is
  ``ctx.get("approved")``, ``order.total`` is ``ctx.get("order.total")`` (a missing key is None);
* ``ctx.get("key")`` / ``ctx.get("key", default)`` (or ``context.get``), with a string key;
* constants (strings, numbers, True, False, None) and tuple, list and set displays;
* comparisons (``== != < <= > >= in``, ``not in``, ``is``, ``is not``), ``and``, ``or``,
  ``not``, unary ``-`` / ``+`` and ``+ - * / // %``.

Anything else (another call, an attribute of something that is not a name, a subscript, a
lambda, a comprehension, ``**``, a name with double underscores) is refused when the edge is
made, with an :class:`InvalidConditionError` naming the edge and the offending part.

Why parse and whitelist rather than ``eval``: a definition is read from user modules and
runs in every worker; the expression may only read the context, never reach builtins,
attributes or imports. The checked expression is rewritten (every context read becomes a
``get`` on the one parameter) and compiled to one Python function, with empty builtins, so
evaluating it costs what the equivalent lambda costs. The function is not picklable; an
``Edge`` pickles as its arguments and compiles its condition again.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shardflow.errors import InvalidConditionError, InvalidTransitionError

if TYPE_CHECKING:
    from shardflow.context import WorkflowContext

_PARAM = "__ctx__"
"""The compiled function's parameter. User names may not hold double underscores, so no
name in an expression can be it."""
_CONTEXT_NAMES = frozenset({"ctx", "context"})
_CONSTANTS = (str, int, float, bool, type(None))
_BIN_OPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod)
_UNARY_OPS = (ast.Not, ast.USub, ast.UAdd)
_REFUSED: dict[type[ast.AST], str] = {
    ast.Subscript: "a subscript (write a dotted path: order.total)",
    ast.Lambda: "a lambda",
    ast.ListComp: "a comprehension", ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension", ast.GeneratorExp: "a comprehension",
    ast.IfExp: "a conditional expression (x if c else y)",
    ast.NamedExpr: "an assignment expression (:=)",
    ast.JoinedStr: "an f-string",
    ast.Dict: "a dict display",
    ast.Await: "await", ast.Yield: "yield", ast.YieldFrom: "yield",
    ast.Starred: "a starred expression",
}
_OPERATORS = {ast.Pow: "**", ast.MatMult: "@", ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^",
              ast.LShift: "<<", ast.RShift: ">>", ast.Invert: "~"}


_TEMPLATE = """\
def condition({param}):
    try:
        return {expression}
    except Exception as exc:
        raise failed(exc) from exc
"""


def compile_condition(text: str, source: str, target: str) -> Callable[[WorkflowContext], Any]:
    """The predicate ``text`` means: a function of the context whose truth decides the edge
    ``source -> target``, or :class:`InvalidConditionError` if ``text`` is not in the grammar.

    An error while evaluating (``None < 3``) is raised as :class:`InvalidTransitionError`
    naming the edge and the expression. The function is generated (its ``try`` costs nothing
    until something raises), so a call costs what the equivalent lambda costs."""
    text = text.strip()
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise InvalidConditionError(source, target, text, text,
                                    f"it is not an expression ({exc.msg})") from None
    checked = _Checker(text, source, target).rewrite(tree.body)
    # unparse: the checked tree holds whitelisted nodes only, and their text is what runs.
    code = _TEMPLATE.format(param=_PARAM, expression=ast.unparse(checked))

    def failed(exc: Exception) -> InvalidTransitionError:
        return InvalidTransitionError(source, target, f"condition {text!r} raised "
                                                      f"{type(exc).__name__}: {exc}")

    namespace: dict[str, Any] = {"__builtins__": {}, "Exception": Exception, "failed": failed}
    exec(compile(code, f"<condition {source} -> {target}>", "exec"), namespace)
    predicate: Callable[[WorkflowContext], Any] = namespace["condition"]
    return predicate


class _Checker:
    """Checks an expression against the grammar and rewrites its context reads."""

    def __init__(self, text: str, source: str, target: str) -> None:
        self.text = text
        self.source = source
        self.target = target

    def refuse(self, node: ast.AST, why: str) -> InvalidConditionError:
        part = ast.get_source_segment(self.text, node) or self.text
        return InvalidConditionError(self.source, self.target, self.text, part, why)

    def rewrite(self, node: ast.expr) -> ast.expr:
        if isinstance(node, ast.Constant):
            if not isinstance(node.value, _CONSTANTS):
                raise self.refuse(node, f"a {type(node.value).__name__} constant is not allowed")
            return node
        if isinstance(node, ast.Name | ast.Attribute):
            return self._read(self._path(node))
        if isinstance(node, ast.Call):
            return self._get_call(node)
        if isinstance(node, ast.BoolOp):
            return ast.BoolOp(node.op, [self.rewrite(v) for v in node.values])
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, _UNARY_OPS):
            return ast.UnaryOp(node.op, self.rewrite(node.operand))
        if isinstance(node, ast.BinOp) and isinstance(node.op, _BIN_OPS):
            return ast.BinOp(self.rewrite(node.left), node.op, self.rewrite(node.right))
        if isinstance(node, ast.Compare):
            return ast.Compare(self.rewrite(node.left), node.ops,
                               [self.rewrite(c) for c in node.comparators])
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            elements = [self.rewrite(e) for e in node.elts]
            if isinstance(node, ast.Set):
                return ast.Set(elements)
            return type(node)(elements, ast.Load())
        if isinstance(node, ast.UnaryOp | ast.BinOp):
            symbol = _OPERATORS.get(type(node.op), type(node.op).__name__)
            raise self.refuse(node, f"the operator {symbol} is not allowed")
        what = _REFUSED.get(type(node), f"a {type(node).__name__} expression")
        raise self.refuse(node, f"{what} is not allowed")

    def _path(self, node: ast.Name | ast.Attribute) -> str:
        """The dotted context path a name or a chain of attributes of a name means."""
        parts: list[str] = []
        current: ast.expr = node
        while isinstance(current, ast.Attribute):
            parts.append(current.attr)
            current = current.value
        if not isinstance(current, ast.Name):
            raise self.refuse(node, "only names and dotted names are read from the context; "
                                    "attributes of other values are not allowed")
        parts.append(current.id)
        parts.reverse()
        if parts[0] in _CONTEXT_NAMES:
            raise self.refuse(node, f"{parts[0]!r} may only be used as {parts[0]}.get('key'); "
                                    "a bare name is a context key (approved, order.total)")
        for part in parts:
            if "__" in part:
                raise self.refuse(node, "names with double underscores are not allowed")
        return ".".join(parts)

    def _get_call(self, node: ast.Call) -> ast.expr:
        func = node.func
        if not (isinstance(func, ast.Attribute) and func.attr == "get"
                and isinstance(func.value, ast.Name) and func.value.id in _CONTEXT_NAMES):
            raise self.refuse(node, "the only call allowed is ctx.get('key'[, default]) "
                                    "(or context.get)")
        if node.keywords or not 1 <= len(node.args) <= 2:
            raise self.refuse(node, "ctx.get takes a key and an optional default, by position")
        key = node.args[0]
        if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
            raise self.refuse(key, "the key of ctx.get must be a string constant")
        return self._read(key.value, *(self.rewrite(a) for a in node.args[1:]))

    @staticmethod
    def _read(path: str, *default: ast.expr) -> ast.expr:
        """``__ctx__.get(path[, default])``: the one way the compiled code reads the context."""
        getter = ast.Attribute(ast.Name(_PARAM, ast.Load()), "get", ast.Load())
        return ast.Call(getter, [ast.Constant(path), *default], [])
