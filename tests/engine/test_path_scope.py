"""PathScope keeps asyncio.TaskGroup's rules the interpreter relies on (fail-fast, waiting,
cancellation), without TaskGroup's per-instance Python overhead."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shardflow.engine.scope import PathScope


async def _body(scope: PathScope, body: Any) -> None:
    """What Interpreter.run does around its first path."""
    try:
        await body
    except BaseException as exc:
        await scope.close(exc)
        raise
    await scope.close(None)


def test_a_failing_task_cancels_its_siblings_and_the_body_then_reports_its_error() -> None:
    events: list[str] = []

    async def sibling(started: asyncio.Event) -> None:
        try:
            started.set()
            await asyncio.Event().wait()
        finally:
            events.append("sibling unwound")

    async def failing(started: asyncio.Event) -> None:
        await started.wait()
        raise ValueError("boom")

    async def body() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            events.append("body unwound")

    async def main() -> BaseExceptionGroup[Any]:
        scope = PathScope.for_current_task()
        started = asyncio.Event()
        scope.create_task(sibling(started))
        scope.create_task(failing(started))
        with pytest.raises(BaseExceptionGroup) as raised:
            await _body(scope, body())
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0  # the scope withdrew its request
        return raised.value

    group = asyncio.run(main())
    assert [type(e) for e in group.exceptions] == [ValueError]
    assert sorted(events) == ["body unwound", "sibling unwound"]


def test_cancelling_the_parent_cancels_every_task_and_propagates() -> None:
    unwound: list[int] = []

    async def branch(i: int, started: asyncio.Event) -> None:
        try:
            started.set()
            await asyncio.Event().wait()
        finally:
            unwound.append(i)

    async def instance(ready: asyncio.Event) -> None:
        scope = PathScope.for_current_task()
        started = [asyncio.Event(), asyncio.Event()]
        for i, event in enumerate(started):
            scope.create_task(branch(i, event))

        async def body() -> None:
            for event in started:
                await event.wait()
            ready.set()
            await asyncio.Event().wait()

        await _body(scope, body())

    async def main() -> None:
        ready = asyncio.Event()
        task = asyncio.create_task(instance(ready))
        await ready.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled()

    asyncio.run(main())
    assert sorted(unwound) == [0, 1]


def test_the_body_waits_for_every_task_before_it_returns() -> None:
    order: list[str] = []

    async def slow(go: asyncio.Event) -> None:
        await go.wait()
        order.append("task done")

    async def main() -> None:
        scope = PathScope.for_current_task()
        go = asyncio.Event()
        scope.create_task(slow(go))

        async def body() -> None:
            asyncio.get_running_loop().call_soon(go.set)

        await _body(scope, body())
        order.append("body returned")

    asyncio.run(main())
    assert order == ["task done", "body returned"]
