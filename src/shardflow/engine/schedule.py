"""Compiled schedules: a static plan's paths as straight-line Python, generated once per plan.

Why: the interpreter's loop (``Interpreter._path``) looks up every node's plan, tests its
kind and policies, and resolves its edges on every step of every instance; on the notify
fork/join that bookkeeping was a fifth of an instance's instructions. For a *static* plan
(every node a machine step, no edge condition) none of it depends on the instance, so it is
decided here once and written out as code, the way ``dataclasses`` writes ``__init__``: one
coroutine function per path head, each running its steps in sequence and forking or
arriving at a join exactly where the interpreter would.

The generated code keeps the interpreter's rules to the letter (docs/SEMANTICS.md): the same
step attempt (a plain step awaited inline, any other through :func:`run_step`), the same
history record or statistics, the same ``current_step`` a watchdog reads, forks made in edge
order with the first successor run inline and the others spawned in order into the
instance's :class:`~shardflow.engine.scope.PathScope`, and joins counted as
``Interpreter._arrive`` counts them and merged by the plan's rules (declaration order).
``tests/engine/test_schedule.py`` runs random static graphs both ways and compares contexts,
histories and failures.

A schedule reads each step's policies (retries, timeout, limits) when it is compiled: the
plan is compiled once per definition, and so are they.
"""

from __future__ import annotations

import asyncio
import linecache
from collections.abc import Callable, Coroutine
from itertools import count
from typing import TYPE_CHECKING, Any

from shardflow.engine import stepexec
from shardflow.engine.branches import first_failure
from shardflow.engine.scope import PathScope
from shardflow.model.plan import MachinePlan, Plan

if TYPE_CHECKING:
    from shardflow.context import WorkflowContext
    from shardflow.engine.interpreter import Interpreter

Entry = Callable[["Interpreter", "WorkflowContext"], Coroutine[Any, Any, None]]
"""The compiled path from the initial step: ``await entry(interpreter, context)``."""
Variant = tuple[bool, bool]
"""(counted: steps go to statistics, not history; gated: a limit gate is present, so limited
steps are not plain)."""
SOURCE_PREFIX = "<shardflow schedule"
"""How the file name of every compiled schedule begins (``engine/blame.py`` looks for it)."""
_serial = count()
_UNSET: Any = object()


MAX_JOIN_DEPTH = 32
"""Joins one after the other that a schedule may hold: the code after each join runs one
coroutine level deeper (``await`` of the join's function), and every resumption passes each
level, so deep chains of joins stay interpreted (the interpreter continues inline)."""


def is_static(plan: Plan) -> bool:
    """True if every node is a machine step and no edge has a condition."""
    return all(isinstance(node, MachinePlan) and node.unconditional
               for node in plan.nodes.values())


def join_depth(plan: Plan) -> int:
    """The most joins on one path from the initial step (the plan is acyclic)."""
    depth: dict[str, int] = {}
    order = [plan.initial]
    waiting = dict(plan.in_degree)
    for node in order:  # Kahn's order: every node after all its sources
        mine = depth.get(node, 0) + (plan.in_degree[node] > 1)
        depth[node] = mine
        for edge in plan.nodes[node].outgoing:
            depth[edge.target] = max(depth.get(edge.target, 0), mine)
            waiting[edge.target] -= 1
            if waiting[edge.target] == 0:
                order.append(edge.target)
    return max(depth.values(), default=0)


def schedule_for(plan: Plan, variant: Variant) -> Entry | None:
    """The compiled entry of ``plan`` for ``variant`` (built on first use), or None if the
    plan is not static (or its joins are too deep) and must be interpreted."""
    entry = plan.schedules.get(variant, _UNSET)
    if entry is _UNSET:
        compiled = is_static(plan) and join_depth(plan) <= MAX_JOIN_DEPTH
        entry = plan.schedules[variant] = compile_schedule(plan, variant) if compiled else None
    return entry  # type: ignore[no-any-return]


def compile_schedule(plan: Plan, variant: Variant) -> Entry:
    """Generate, compile and return the entry function of static ``plan``."""
    source, namespace, entry_name = _Emitter(plan, variant).module()
    filename = f"{SOURCE_PREFIX} {next(_serial)}: {plan.name}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)
    entry: Entry = namespace[entry_name]
    return entry


class _Emitter:
    """Writes the module source of one plan and variant."""

    def __init__(self, plan: Plan, variant: Variant) -> None:
        self.plan = plan
        self.counted, self.gated = variant
        self.namespace: dict[str, Any] = {
            "_now": stepexec._now, "_plain_failure": stepexec.plain_failure,
            "_run_step": stepexec.run_step, "_PathScope": PathScope,
            "_first_failure": first_failure, "_join": plan.rules.join,
            "_CancelledError": asyncio.CancelledError,
        }
        self.names = {node: f"_n{i}" for i, node in enumerate(plan.nodes)}
        """node -> the suffix of its constants and of its function, if it has one"""
        self.wanted: list[tuple[str, bool]] = []
        self.emitted: set[tuple[str, bool]] = set()
        self.forks = count()
        self.scoped = False
        """Whether the function being written holds the instance's scope in ``scope``: its
        forks spawn with a method call, no bound method per fork."""
        in_degree = plan.in_degree
        self.dynamic = any(len(p.outgoing) > 1 and any(in_degree[e.target] > 1
                                                       for e in p.outgoing)
                           for p in plan.nodes.values())
        """Some fork leads straight into a join: such forks go through ``_fork``."""

    def module(self) -> tuple[str, dict[str, Any], str]:
        """(source, namespace to run it in, name of the entry function)."""
        out: list[str] = [f"# compiled schedule of workflow {self.plan.name!r}\n"]
        entry = self.function(self.plan.initial)
        while self.wanted:
            node, task = self.wanted.pop()
            out.extend(self.body(node, task, entry=not task and node == self.plan.initial))
        return "".join(out), self.namespace, entry

    def function(self, node: str, task: bool = False) -> str:
        """The name of the function that runs ``node`` and its chain (emitted once):
        awaited in a running path, or (``task``) as the root of a task of its own."""
        if (node, task) not in self.emitted:
            self.emitted.add((node, task))
            self.wanted.append((node, task))
        return ("task" if task else "run") + self.names[node]

    def body(self, node: str, task: bool, entry: bool) -> list[str]:
        lines = [f"\nasync def {self.function(node, task)}(interp, ctx):\n"]
        self.scoped = task or (entry and self.plan.can_fork)
        if self.counted:
            lines.append("    stats = interp.stats\n    durations = stats.durations\n")
        else:
            lines.append("    log = interp.step_log\n")
        if task:
            # The root of a spawned path tells the scope itself how it ended (PathScope.spawn):
            # no done callback, so no loop handle and no call per task.
            lines.append("    scope = interp._tg\n"
                         "    try:\n")
            self.chain(node, lines, "        ")
            lines.append("    except _CancelledError:\n"
                         "        raise\n"
                         "    except BaseException as exc:\n"
                         "        scope.failed(exc)\n"
                         "    finally:\n"
                         "        scope.ended()\n")
            return lines
        if entry and self.dynamic:  # _fork and _arrive count edges down
            lines.append("    interp.remaining = dict(interp.plan.in_degree)\n")
        if not (entry and self.plan.can_fork):
            self.chain(node, lines, "    ")
            return lines
        # The entry opens the instance's scope itself (what Interpreter._in_group does
        # around an interpreted path): one coroutine level less per instance.
        lines.append("    scope = interp._tg = _PathScope.for_current_task()\n"
                     "    try:\n"
                     "        try:\n")
        self.chain(node, lines, "            ")
        lines.append("        except BaseException as exc:\n"
                     "            await scope.close(exc)\n"
                     "            raise\n"
                     "        await scope.close(None)\n"
                     "    except BaseExceptionGroup as group:\n"
                     "        raise _first_failure(group) from None\n"
                     "    finally:\n"
                     "        interp._tg = None\n")
        return lines

    def chain(self, node: str, lines: list[str], pad: str) -> None:
        """Run ``node`` on ``ctx``, then whatever follows it in this path (lines indented
        by ``pad``)."""
        while True:
            self.step(node, lines, pad)
            plan = self.plan.nodes[node]
            outgoing = plan.outgoing
            if not outgoing:
                lines.append(f"{pad}interp.sinks[{node!r}] = ctx\n")
                return
            in_degree = self.plan.in_degree
            if len(outgoing) == 1:
                edge = outgoing[0]
                if in_degree[edge.target] == 1:
                    node = edge.target
                    continue
                self.arrive(node, edge.index, edge.target, lines, pad)
                return
            if all(in_degree[e.target] == 1 for e in outgoing):
                # The interpreter's _fork for this case: every branch forked in edge order,
                # the first run inline, the others spawned in order.
                fork = next(self.forks)
                names = [f"f{fork}_{i}" for i in range(len(outgoing))]
                lines.extend(f"{pad}{name} = ctx.fork()\n" for name in names)
                if not self.scoped:
                    lines.append(f"{pad}scope = interp._tg\n")
                for name, edge in zip(names[1:], outgoing[1:], strict=True):
                    root = self.function(edge.target, task=True)
                    lines.append(f"{pad}scope.spawn({root}(interp, {name}))\n")
                lines.append(f"{pad}ctx = {names[0]}\n")
                node = outgoing[0].target
                continue
            self.dynamic_fork(node, lines, pad)
            return

    def simple_tail(self, node: str) -> bool:
        """Whether ``node`` starts a chain of steps that ends the path with no fork or join:
        such a chain after a join is written out at each arrival instead of in a function
        of its own (one coroutine less per instance; each arrival gets a copy, so only
        chains that cannot multiply)."""
        nodes, in_degree = self.plan.nodes, self.plan.in_degree
        while True:
            outgoing = nodes[node].outgoing
            if not outgoing:
                return True
            if len(outgoing) > 1 or in_degree[outgoing[0].target] > 1:
                return False
            node = outgoing[0].target

    def arrive(self, node: str, index: int, target: str, lines: list[str], pad: str) -> None:
        """``ctx`` arrives at the join ``target``; the last arrival merges and goes on."""
        inline = self.simple_tail(target)
        if self.dynamic:  # _fork arrives here too: arrive as it does, counting edges
            lines.append(f"{pad}ready = interp._arrive({target!r}, {index}, {node!r}, ctx)\n"
                         f"{pad}if ready:\n")
            if inline:
                lines.append(f"{pad}    ctx = ready[0][1]\n")
                self.chain(target, lines, pad + "    ")
            else:
                lines.append(f"{pad}    await {self.function(target)}(interp, ready[0][1])\n")
            return
        # Interpreter._arrive at a join, without its call: every arrival of a static plan
        # carries a context, so the count of arrivals says when the last one is in.
        lines.append(f"{pad}arrived = interp.arrivals.get({target!r})\n"
                     f"{pad}if arrived is None:\n"
                     f"{pad}    interp.arrivals[{target!r}] = [({index}, {node!r}, ctx)]\n"
                     f"{pad}else:\n"
                     f"{pad}    arrived.append(({index}, {node!r}, ctx))\n"
                     f"{pad}    if len(arrived) == {self.plan.in_degree[target]}:\n"
                     f"{pad}        del interp.arrivals[{target!r}]\n")
        # Interpreter._merged, without its call: the plan's join, a failure of which fails
        # the join's step.
        lines.append(f"{pad}        try:\n"
                     f"{pad}            ctx = _join(arrived, {target!r})\n"
                     f"{pad}        except Exception as exc:\n"
                     f"{pad}            interp._join_failed({target!r}, exc, arrived)\n")
        if inline:
            self.chain(target, lines, pad + "        ")
        else:
            lines.append(f"{pad}        await {self.function(target)}(interp, ctx)\n")

    def dynamic_fork(self, node: str, lines: list[str], pad: str) -> None:
        """A fork with a join among its targets: which branches are ready depends on the
        arrivals so far, so it goes through ``Interpreter._fork`` and a table of functions."""
        plan = self.plan.nodes[node]
        suffix = self.names[node]
        inline = {e.target: self.function(e.target) for e in plan.outgoing}
        roots = {e.target: self.function(e.target, task=True) for e in plan.outgoing}
        self.namespace[f"OUT{suffix}"] = plan.outgoing
        lines.append(f"{pad}ready = interp._fork({node!r}, OUT{suffix}, ctx)\n"
                     f"{pad}if ready:\n"
                     f"{pad}    run = {{{', '.join(f'{t!r}: {f}' for t, f in inline.items())}}}\n"
                     f"{pad}    root = {{{', '.join(f'{t!r}: {f}' for t, f in roots.items())}}}\n"
                     f"{pad}    spawn = interp._tg.spawn\n"
                     f"{pad}    for target, branch in ready[1:]:\n"
                     f"{pad}        spawn(root[target](interp, branch))\n"
                     f"{pad}    await run[ready[0][0]](interp, ready[0][1])\n")

    def step(self, node: str, lines: list[str], pad: str) -> None:
        """One step's attempt, as ``Interpreter._path`` makes it."""
        plan = self.plan.nodes[node]
        assert isinstance(plan, MachinePlan)
        step = plan.step
        name = f"S{self.names[node]}"
        self.namespace[name] = step
        log, stats = ("None", "stats") if self.counted else ("log", "None")
        if (step.retries or step.timeout_seconds is not None
                or (self.gated and (step.limit or step.rate_limit))):
            lines.append(f"{pad}ctx = await _run_step({name}, ctx, {node!r}, {node!r}, "
                         f"interp.clock, interp.gate, {log}, {stats})\n")
            return
        lines.append(f"{pad}ctx.current_step = {node!r}\n"
                     f"{pad}started = _now()\n"
                     f"{pad}try:\n"
                     f"{pad}    result = await {name}.execute(ctx)\n"
                     f"{pad}    if result is not None:\n"
                     f"{pad}        ctx.set({node!r}, result)\n"
                     f"{pad}except BaseException as exc:\n"
                     f"{pad}    _plain_failure(exc, {node!r}, started, ctx, {log}, {stats})\n"
                     f"{pad}finally:\n"
                     f"{pad}    ctx.current_step = None\n")
        if self.counted:
            lines.append(f"{pad}durations[{node!r}].append(_now() - started)\n")
        else:
            lines.append(f"{pad}log.append(({node!r}, 'completed', 1, started, _now(), None))\n")
