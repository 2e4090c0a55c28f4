"""Compiled schedules: a static plan's paths as straight-line Python, generated once per plan.

Why: the interpreter's loop (``Interpreter._path``) looks up every node's plan, tests its
kind and policies, and resolves its edges on every step of every instance; on the notify
fork/join that bookkeeping was a large share of an instance (docs/PERFORMANCE.md). For a *static* plan
(every node a machine step, no edge condition) none of it depends on the instance, so it is
decided here once and written out as code, the way ``dataclasses`` writes ``__init__``: one
coroutine function per path head, each running its steps in sequence and forking or
arriving at a join exactly where the interpreter would.

The generated code applies the interpreter's rules (docs/SEMANTICS.md) by writing out the
templates of ``engine/attempt.py`` and ``engine/arrival.py``, where each rule lives: the
step attempt (a plain step inline, any other through ``run_step``) and the edge arrival (joins counted and merged by
the plan's rules, in declaration order). Forks are made in edge order, the first successor
run inline and the others spawned in order into the instance's
:class:`~shardflow.engine.scope.PathScope`. Generated code sees the instance only as its
:class:`~shardflow.engine.state.InstanceState` and calls only public names.
``tests/engine/test_schedule.py`` runs random static graphs both ways and compares contexts,
histories and failures; ``tests/engine/test_differential.py`` does so for every example
workflow.

A schedule reads each step's policies (retries, timeout, limits) when it is compiled: the
plan is compiled once per definition, and so are they.
"""

from __future__ import annotations

import asyncio
import linecache
from collections.abc import Callable, Coroutine
from itertools import count
from typing import TYPE_CHECKING, Any

from shardflow.engine import arrival, attempt, passive
from shardflow.engine.branches import first_failure
from shardflow.engine.scope import PathScope
from shardflow.model.gateways import ParallelGateway
from shardflow.model.plan import GatewayPlan, MachinePlan, Plan

if TYPE_CHECKING:
    from shardflow.context import WorkflowContext
    from shardflow.engine.state import InstanceState

Entry = Callable[["InstanceState", "WorkflowContext"], Coroutine[Any, Any, None]]
"""The compiled path from the initial step: ``await entry(state, context)``."""
Variant = tuple[bool, bool]
"""(counted: steps go to statistics, not history; gated: a limit gate is present, so limited
steps are not plain)."""
_serial = count()
_UNSET: Any = object()


MAX_JOIN_DEPTH = 32
"""Joins one after the other that a schedule may hold: the code after each join runs one
coroutine level deeper (``await`` of the join's function), and every resumption passes each
level, so deep chains of joins stay interpreted (the interpreter continues inline)."""


def is_static(plan: Plan) -> bool:
    """True if every node is a machine step without a ``can_execute`` guard (a refused step
    ends its path like a false condition: the interpreter's walk) or a ``ParallelGateway``
    without hooks (a fork that does no work; its hooks are the interpreter's to apply), and
    no edge has a condition."""
    return all(((isinstance(node, MachinePlan) and not node.step.guarded)
                or (isinstance(node, GatewayPlan) and isinstance(node.gateway, ParallelGateway)
                    and not node.gateway.hooked))
               and node.unconditional for node in plan.nodes.values())


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
    entry: Entry | None = plan.schedules.get(variant, _UNSET)
    if entry is _UNSET:
        compiled = is_static(plan) and join_depth(plan) <= MAX_JOIN_DEPTH
        entry = plan.schedules[variant] = compile_schedule(plan, variant) if compiled else None
    return entry


def compile_schedule(plan: Plan, variant: Variant) -> Entry:
    """Generate, compile and return the entry function of static ``plan``."""
    source, namespace, entry_name = _Emitter(plan, variant).module()
    filename = f"{attempt.SCHEDULE_FILE_PREFIX} {next(_serial)}: {plan.name}>"
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
            **attempt.NAMESPACE, **arrival.NAMESPACE,
            "PathScope": PathScope, "first_failure": first_failure,
            "join": plan.rules.join, "CancelledError": asyncio.CancelledError,
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
        """Some fork leads straight into a join: such forks go through ``arrival.fork``, and
        every arrival counts edges as :func:`arrival.arrive` does."""

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
        lines = [f"\nasync def {self.function(node, task)}(state, ctx):\n"]
        self.scoped = task or (entry and self.plan.can_fork)
        if self.counted:
            lines.append("    stats = state.stats\n    durations = stats.durations\n")
        else:
            lines.append("    log = state.step_log\n")
        if task:
            # The root of a spawned path tells the scope itself how it ended (PathScope.spawn):
            # no done callback, so no loop handle and no call per task.
            lines.append("    scope = state.scope\n"
                         "    try:\n")
            self.chain(node, lines, "        ")
            lines.append("    except CancelledError:\n"
                         "        raise\n"
                         "    except BaseException as exc:\n"
                         "        scope.failed(exc)\n"
                         "    finally:\n"
                         "        scope.ended()\n")
            return lines
        if not (entry and self.plan.can_fork):
            self.chain(node, lines, "    ")
            return lines
        # The entry opens the instance's scope itself, as Interpreter._in_group does around an
        # interpreted path (docs/DECISIONS.md: one coroutine level less per instance).
        lines.append("    scope = state.scope = PathScope.for_current_task()\n"
                     "    try:\n"
                     "        try:\n")
        self.chain(node, lines, "            ")
        lines.append("        except BaseException as exc:\n"
                     "            await scope.close(exc)\n"
                     "            raise\n"
                     "        await scope.close(None)\n"
                     "    except BaseExceptionGroup as group:\n"
                     "        raise first_failure(group) from None\n"
                     "    finally:\n"
                     "        state.scope = None\n")
        return lines

    def chain(self, node: str, lines: list[str], pad: str) -> None:
        """Run ``node`` on ``ctx``, then whatever follows it in this path (lines indented
        by ``pad``)."""
        while True:
            self.step(node, lines, pad)
            plan = self.plan.nodes[node]
            outgoing = plan.outgoing
            if not outgoing:
                lines.append(f"{pad}state.sinks[{node!r}] = ctx\n")
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
                # arrival.fork for this case: every branch forked in edge order, the first
                # run inline, the others spawned in order.
                fork = next(self.forks)
                names = [f"f{fork}_{i}" for i in range(len(outgoing))]
                lines.extend(f"{pad}{name} = ctx.fork()\n" for name in names)
                if not self.scoped:
                    lines.append(f"{pad}scope = state.scope\n")
                for name, edge in zip(names[1:], outgoing[1:], strict=True):
                    root = self.function(edge.target, task=True)
                    lines.append(f"{pad}scope.spawn({root}(state, {name}))\n")
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
        arriving, inner = arrival.arrival_source(node, index, target,
                                                 self.plan.in_degree[target], self.dynamic, pad)
        lines.extend(arriving)
        if self.simple_tail(target):
            self.chain(target, lines, inner)
        else:
            lines.append(f"{inner}await {self.function(target)}(state, ctx)\n")

    def dynamic_fork(self, node: str, lines: list[str], pad: str) -> None:
        """A fork with a join among its targets: which branches are ready depends on the
        arrivals so far, so it goes through :func:`arrival.fork` and a table of functions."""
        plan = self.plan.nodes[node]
        suffix = self.names[node]
        inline = {e.target: self.function(e.target) for e in plan.outgoing}
        roots = {e.target: self.function(e.target, task=True) for e in plan.outgoing}
        self.namespace[f"OUT{suffix}"] = plan.outgoing
        lines.append(f"{pad}ready = fork(state, OUT{suffix}, ctx)\n"
                     f"{pad}if ready:\n"
                     f"{pad}    run = {{{', '.join(f'{t!r}: {f}' for t, f in inline.items())}}}\n"
                     f"{pad}    root = {{{', '.join(f'{t!r}: {f}' for t, f in roots.items())}}}\n"
                     f"{pad}    spawn = state.scope.spawn\n"
                     f"{pad}    for target, branch in ready[1:]:\n"
                     f"{pad}        spawn(root[target](state, branch))\n"
                     f"{pad}    await run[ready[0][0]](state, ready[0][1])\n")

    def step(self, node: str, lines: list[str], pad: str) -> None:
        """One step's attempt (``attempt.step_source``)."""
        plan = self.plan.nodes[node]
        if isinstance(plan, GatewayPlan):  # a ParallelGateway: logged, no work
            lines.extend(passive.passed_source(node, self.counted, pad))
            return
        assert isinstance(plan, MachinePlan)
        name = f"S{self.names[node]}"
        self.namespace[name] = plan.step
        lines.extend(attempt.step_source(node, name, attempt.is_plain(plan.step, self.gated),
                                         self.counted, pad, store=plan.step.store_result))
