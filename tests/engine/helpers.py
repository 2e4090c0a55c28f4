"""Helpers for the engine tests: engines for a few definitions, and event-based probes that make
concurrency observable without sleeping (a rendezvous, a concurrency tracker)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from shardflow import (
    BaseMachineStep,
    LocalExecutionEngine,
    WorkflowContext,
    WorkflowDefinition,
    WorkflowRegistry,
)

LIMIT = 10.0
"""Seconds a test may wait for something that should happen at once: a wide margin, so a broken
engine fails the test instead of hanging it, and a slow machine never does."""


def engine_for(*definitions: WorkflowDefinition, **options: Any) -> LocalExecutionEngine:
    """A fresh engine with ``definitions`` registered."""
    registry = WorkflowRegistry()
    for definition in definitions:
        registry.register_definition(definition)
    return LocalExecutionEngine(registry, **options)


def single(node: Any, name: str = "single", **options: Any) -> WorkflowDefinition:
    """A workflow of one node, ``node``."""
    return WorkflowDefinition(name=name, steps={"node": node}, edges=[], initial_step="node",
                              terminal_steps={"node"}, **options)


def history_of(instance: Any, node: str) -> list[Any]:
    """The history records of ``node``."""
    return [r for r in instance.history if r.node == node]


class Rendezvous:
    """Each party waits until ``parties`` have arrived. If the parties ran one after another,
    the first would wait forever: arriving proves they ran at the same time."""

    def __init__(self, parties: int) -> None:
        self.parties = parties
        self.arrived: list[str] = []
        self._all = asyncio.Event()

    async def arrive(self, name: str) -> None:
        self.arrived.append(name)
        if len(self.arrived) >= self.parties:
            self._all.set()
        await self._all.wait()


class Tracker:
    """Counts how many holders are inside at once (``current``, ``peak``); ``wait_inside(n)``
    returns once ``n`` are inside; holders stay inside until ``release()``."""

    def __init__(self) -> None:
        self.current = 0
        self.peak = 0
        self.entered: list[str] = []
        self._changed = asyncio.Event()
        self._release = asyncio.Event()

    async def hold(self, name: str) -> None:
        self.current += 1
        self.peak = max(self.peak, self.current)
        self.entered.append(name)
        self._changed.set()
        try:
            await self._release.wait()
        finally:
            self.current -= 1

    async def wait_inside(self, count: int) -> None:
        while self.current < count:
            self._changed.clear()
            await self._changed.wait()

    def release(self) -> None:
        self._release.set()


async def settle(rounds: int = 20) -> None:
    """Let every runnable task take a few steps (no waiting on time)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


async def within(awaitable: Awaitable[Any], seconds: float = LIMIT) -> Any:
    """``await awaitable``, failing the test (not hanging it) if it takes longer than ``seconds``."""
    async with asyncio.timeout(seconds):
        return await awaitable


def step(name: str, body: Callable[[WorkflowContext], Awaitable[Any]], **attrs: Any) -> BaseMachineStep:
    """A machine step named ``name`` running ``body(context)``; ``attrs`` set class attributes
    (``retries``, ``timeout_seconds`` ...)."""

    async def execute(self: BaseMachineStep, context: WorkflowContext) -> Any:
        return await body(context)

    cls = type(f"Step_{name}", (BaseMachineStep,), {"name": name, "execute": execute, **attrs})
    instance: BaseMachineStep = cls()
    return instance


def writer(name: str, **values: Any) -> BaseMachineStep:
    """A step that writes ``values`` to the context (keys may be dotted via ``__``)."""

    async def body(context: WorkflowContext) -> None:
        for key, value in values.items():
            context.set(key.replace("__", "."), value)

    return step(name, body)
