"""PathScope keeps asyncio.TaskGroup's rules the interpreter relies on (fail-fast, waiting,
cancellation), without TaskGroup's per-instance Python overhead."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from engine.helpers import LIMIT
from shardflow.engine.rows import JobKind
from shardflow.engine.scope import PathScope


async def _reporting(scope: PathScope, fn: Any, *args: Any) -> None:
    """A task root as a compiled schedule writes it for :meth:`PathScope.spawn` (the body
    inline: one cancelled before it ran leaves no coroutine behind)."""
    try:
        await fn(*args)
    except asyncio.CancelledError:
        raise
    except BaseException as exc:
        scope.failed(exc)
    finally:
        scope.ended()


def _start(scope: PathScope, kind: str, fn: Any, *args: Any) -> None:
    """Start ``fn(*args)`` in ``scope`` as a done-callback task or as a self-reporting one."""
    if kind == "callback":
        scope.create_task(fn(*args))
    else:
        scope.spawn(_reporting(scope, fn, *args))


KINDS = pytest.mark.parametrize("kind", ["callback", "reporting"])


async def _body(scope: PathScope, body: Any) -> None:
    """What Interpreter.run does around its first path."""
    try:
        await body
    except BaseException as exc:
        await scope.close(exc)
        raise
    await scope.close(None)


@KINDS
def test_a_failing_task_cancels_its_siblings_and_the_body_then_reports_its_error(kind: str) -> None:
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
        _start(scope, kind, sibling, started)
        _start(scope, kind, failing, started)
        with pytest.raises(BaseExceptionGroup) as raised:
            await _body(scope, body())
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0  # the scope withdrew its request
        return raised.value

    group = asyncio.run(main())
    assert [type(e) for e in group.exceptions] == [ValueError]
    assert sorted(events) == ["body unwound", "sibling unwound"]


@KINDS
def test_cancelling_the_parent_cancels_every_task_and_propagates(kind: str) -> None:
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
            _start(scope, kind, branch, i, event)

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


@KINDS
def test_the_body_waits_for_every_task_before_it_returns(kind: str) -> None:
    order: list[str] = []

    async def slow(go: asyncio.Event) -> None:
        await go.wait()
        order.append("task done")

    async def main() -> None:
        scope = PathScope.for_current_task()
        go = asyncio.Event()
        _start(scope, kind, slow, go)

        async def body() -> None:
            asyncio.get_running_loop().call_soon(go.set)

        await _body(scope, body())
        order.append("body returned")

    asyncio.run(main())
    assert order == ["task done", "body returned"]


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
def test_a_task_factory_of_the_host_makes_every_task_of_an_instance_and_job(loop_kind: str) -> None:
    """Hosts that set a task factory (tracing, eager tasks) get every task through it; on a
    loop without one, the engine's tasks carry names that say what they are."""
    import orjson
    import uvloop

    from engine.helpers import LIMIT, step
    from shardflow import Edge, WorkflowDefinition
    from shardflow.engine.scope import TASK_NAME
    from shardflow.engine.shard import JOB_TASK_NAME, ShardRunner

    async def noop(ctx: Any) -> None:
        names.append(asyncio.current_task().get_name())  # type: ignore[union-attr]

    fork = WorkflowDefinition(
        name="fork", steps={n: step(n, noop) for n in ("a", "b", "c", "d")},
        edges=[Edge("a", "b"), Edge("a", "c"), Edge("b", "d"), Edge("c", "d")],
        initial_step="a", terminal_steps={"d"})
    names: list[str] = []
    made = iter(range(1, 1000))

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        task = asyncio.Task(coro, loop=loop, **kwargs)
        task.set_name(f"traced {next(made)}")
        return task

    async def main(with_factory: bool) -> None:
        if with_factory:
            asyncio.get_running_loop().set_task_factory(factory)
        done = asyncio.Event()
        runner = ShardRunner(fork, on_output=lambda out: done.set())
        line = orjson.dumps({"id": 0})
        runner.submit([(0, 0, 1, JobKind.NEW, len(line))], [line])
        async with asyncio.timeout(LIMIT):
            await done.wait()

    new_loop = uvloop.new_event_loop if loop_kind == "uvloop" else asyncio.new_event_loop
    with asyncio.Runner(loop_factory=new_loop) as r:
        r.run(main(False))
    assert names[0] == JOB_TASK_NAME and names[2] == TASK_NAME  # a runs in the job, c in a path
    names.clear()
    with asyncio.Runner(loop_factory=new_loop) as r:
        r.run(main(True))
    job, path = names[0], names[2]
    assert job.startswith("traced") and path.startswith("traced") and job != path


@KINDS
def test_a_task_cancelled_before_it_ran_does_not_keep_the_body_waiting(kind: str) -> None:
    """Tasks started after a sibling failed, before the failure is handled, are cancelled
    before their first step: a self-reporting one never reports, and the scope must still
    see it end."""
    ran: list[int] = []

    async def failing() -> None:
        raise ValueError("first")

    async def late(i: int) -> None:
        ran.append(i)

    async def main() -> BaseExceptionGroup[Any]:
        scope = PathScope.for_current_task()
        _start(scope, kind, failing)

        async def body() -> None:
            await asyncio.sleep(0)  # the failing task fails; its handling is queued after us
            for i in range(3):
                _start(scope, kind, late, i)
            await asyncio.Event().wait()

        with pytest.raises(BaseExceptionGroup) as raised:
            async with asyncio.timeout(LIMIT):
                await _body(scope, body())
        return raised.value

    group = asyncio.run(main())
    assert [type(e) for e in group.exceptions] == [ValueError]
    assert ran == []


@KINDS
def test_a_task_failing_as_the_body_returns_is_reported_once_to_the_body(kind: str) -> None:
    """The body reaches ``close`` just after a task failed: the error reaches the body as
    the instance's failure, and nobody else is told of it (no 'parent already completed')."""
    told: list[Any] = []

    async def failing() -> None:
        raise ValueError("late")

    async def main() -> BaseExceptionGroup[Any]:
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: told.append(context))
        scope = PathScope.for_current_task()
        _start(scope, kind, failing)

        async def body() -> None:
            await asyncio.sleep(0)  # the task fails now; the body closes before it is handled

        with pytest.raises(BaseExceptionGroup) as raised:
            await _body(scope, body())
        await asyncio.sleep(0)  # a handler scheduled for later would have run by now
        await asyncio.sleep(0)
        return raised.value

    group = asyncio.run(main())
    assert [str(e) for e in group.exceptions] == ["late"]
    assert told == []


@KINDS
@pytest.mark.parametrize("raised", [ValueError, KeyboardInterrupt])
def test_a_body_that_raises_is_reported_as_task_group_reports_it(kind: str,
                                                                  raised: type) -> None:
    """The body raises while a task still runs: the task is cancelled and waited for, and the
    body's error comes out as ``asyncio.TaskGroup`` gives it (an ``Exception`` in a group, a
    ``KeyboardInterrupt`` alone), with a failed task's error first when there is one."""

    async def waits() -> None:
        await asyncio.Event().wait()

    async def fails() -> None:
        raise LookupError("task")

    async def body() -> None:
        await asyncio.sleep(0)  # the failing task has run, its failure not yet handled
        raise raised("body")

    async def ours(with_failure: bool) -> BaseException:
        scope = PathScope.for_current_task()
        _start(scope, kind, waits)
        if with_failure:
            _start(scope, kind, fails)
        try:
            await _body(scope, body())
        except BaseException as exc:
            return exc
        raise AssertionError("the scope raised nothing")

    async def reference(with_failure: bool) -> BaseException:
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(waits())
                if with_failure:
                    group.create_task(fails())
                await body()
        except BaseException as exc:
            return exc
        raise AssertionError("TaskGroup raised nothing")

    def shape(exc: BaseException) -> Any:
        if isinstance(exc, BaseExceptionGroup):
            return [type(e) for e in exc.exceptions]
        return type(exc)

    for with_failure in (False, True):
        assert shape(asyncio.run(ours(with_failure))) == shape(
            asyncio.run(reference(with_failure))), with_failure
