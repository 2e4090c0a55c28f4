"""WorkflowGraph: questions about a definition's graph, answered from its edges once indexed.

What comes next from a node, what came before, how deep a node lies, which paths lead from one
node to another: litestar-workflows code asks these of ``WorkflowGraph``, and validation asks
the same reachability question. The graph is read-only and does not validate; ``validate()``
lists the definition's problems (:func:`shardflow.model.validation.find_problems`) and, as
litestar-workflows' graph does, its dead ends.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from shardflow.errors import ValidationProblem

if TYPE_CHECKING:
    from shardflow.context import WorkflowContext
    from shardflow.model.definition import Edge, WorkflowDefinition


class WorkflowGraph:
    """The edges of ``definition`` indexed by node, both ways."""

    def __init__(self, definition: WorkflowDefinition) -> None:
        self.definition = definition
        self._outgoing: dict[str, list[Edge]] = {}
        self._incoming: dict[str, list[str]] = {}
        for edge in definition.edges:
            self._outgoing.setdefault(edge.source, []).append(edge)
            self._incoming.setdefault(edge.target, []).append(edge.source)

    @classmethod
    def from_definition(cls, definition: WorkflowDefinition) -> WorkflowGraph:
        return cls(definition)

    def successors(self, node: str) -> list[str]:
        """Every target of an edge out of ``node``, whatever its condition."""
        return [edge.target for edge in self._outgoing.get(node, ())]

    def get_next_steps(self, node: str, context: WorkflowContext) -> list[str]:
        """The targets of the edges out of ``node`` taken for ``context``
        (:meth:`Edge.evaluate_condition`), in declaration order."""
        return [edge.target for edge in self._outgoing.get(node, ())
                if edge.evaluate_condition(context)]

    def get_previous_steps(self, node: str) -> list[str]:
        return list(self._incoming.get(node, ()))

    def is_terminal(self, node: str) -> bool:
        """Declared terminal, or a sink: an instance's path ends there."""
        return node in self.definition.terminal_steps or not self._outgoing.get(node)

    def depths(self) -> dict[str, int]:
        """Every node reachable from the initial step, with its distance from it in edges."""
        start = self.definition.initial_step
        depth = {start: 0}
        queue = deque([start])
        while queue:
            node = queue.popleft()
            for nxt in self.successors(node):
                if nxt not in depth:
                    depth[nxt] = depth[node] + 1
                    queue.append(nxt)
        return depth

    def get_step_depth(self, node: str) -> int:
        """The fewest edges from the initial step to ``node``; -1 if it is unreachable."""
        return self.depths().get(node, -1)

    def get_all_paths(self, start: str, end: str, max_paths: int = 100) -> list[list[str]]:
        """Up to ``max_paths`` paths from ``start`` to ``end`` that visit no node twice (so a
        cycle cannot make them endless), found depth first in declaration order."""
        paths: list[list[str]] = []
        path = [start]
        on_path = {start}

        def walk(node: str) -> None:
            if node == end:
                paths.append(list(path))
                return
            for nxt in self.successors(node):
                if len(paths) >= max_paths:
                    return
                if nxt not in on_path:
                    path.append(nxt)
                    on_path.add(nxt)
                    walk(nxt)
                    on_path.discard(path.pop())

        if max_paths > 0:
            walk(start)
        return paths

    def validate(self) -> list[ValidationProblem]:
        """Every problem of the definition (``WorkflowDefinition.validate``), and, as
        litestar-workflows' graph reports them, its dead ends: steps with no outgoing edge
        that ``terminal_steps`` does not list (kind ``dead_end``). An empty list: valid."""
        return [*self.definition.validate(), *self.dead_ends()]

    def dead_ends(self) -> list[ValidationProblem]:
        """A node with no outgoing edge that ``terminal_steps`` does not list: litestar-workflows'
        graph reports it, so this graph's ``validate`` does. ``WorkflowDefinition.validate``
        (and registration) does not: in shardflow a path ends at any sink, listed or not."""
        terminal = self.definition.terminal_steps
        return [ValidationProblem(f"Step {node!r} has no outgoing edges but is not marked as "
                                  "terminal (list it in terminal_steps if paths may end there)",
                                  "dead_end", [node])
                for node in self.definition.steps
                if node not in terminal and not self._outgoing.get(node)]
