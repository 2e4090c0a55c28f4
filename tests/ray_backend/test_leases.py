"""Leased limit permits (issue 24): the arbiter actor and the shard actors' gates, wired by a
loop that delivers each message one loop turn later (as Ray calls arrive), no Ray needed.

A permit a step gives back goes to the shard's next waiting step without a message; idle
permits go back; a shard above its fair share hands permits to a starving one; a lost
shard's permits go to the others; the limit holds throughout."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

pytest.importorskip("ray", reason="the Ray backend's tests need Ray: pip install 'shardflow[ray]'")

from shardflow.backends.ray.arbiter_actor import ArbiterActor
from shardflow.backends.ray.leases import LeasedGate
from shardflow.batch import protocol as p

Run = Callable[..., Any]


class _Call:
    """``handle.method.remote(...)``: delivered on a later loop turn, like a Ray call."""

    def __init__(self, target: Callable[..., Any]) -> None:
        self._target = target

    def remote(self, *args: Any) -> None:
        asyncio.get_running_loop().call_soon(self._target, *args)


class Shard:
    """A shard actor's gate talking to the arbiter; counts what it sends and the permits
    its steps hold at once."""

    def __init__(self, key: str, arbiter: ArbiterActor) -> None:
        self.key = key
        self.arbiter = arbiter
        self.gate = LeasedGate(self._send)
        self.messages = 0
        self.running = 0
        self.ran = 0
        self.grant = _Call(self.gate.on_grant)
        self.recall = _Call(lambda names, count: self.gate.on_recall(tuple(names), count))

    def _send(self, frame: bytes) -> None:
        self.messages += 1
        method = self.arbiter.acquire if frame[4] == p.ACQUIRE else self.arbiter.release
        asyncio.get_running_loop().create_task(method(self.key, frame[5:]))

    async def step(self, world: World, hold: asyncio.Event | None = None) -> None:
        token = await self.gate.enter(("api",), None)
        self.running += 1
        world.peak = max(world.peak, world.running())
        try:
            if hold is not None:
                await hold.wait()
            else:
                await asyncio.sleep(0)
        finally:
            self.running -= 1
            self.ran += 1
            self.gate.leave(token)


class World:
    def __init__(self, size: int, shards: int) -> None:
        self.arbiter = ArbiterActor({"api": size}, {})
        self.shards = [Shard(f"s{i}", self.arbiter) for i in range(shards)]
        self.peak = 0

    async def register(self) -> None:
        for shard in self.shards:
            await self.arbiter.register(shard.key, shard)

    def running(self) -> int:
        return sum(s.running for s in self.shards)


async def _settle(turns: int = 50) -> None:
    for _ in range(turns):
        await asyncio.sleep(0)


def test_a_given_back_permit_goes_to_the_next_waiting_step_without_a_message(run: Run) -> None:
    async def main() -> tuple[int, int]:
        world = World(size=4, shards=1)
        await world.register()
        shard = world.shards[0]
        await asyncio.gather(*(shard.step(world) for _ in range(400)))
        await _settle()
        return shard.messages, world.peak

    messages, peak = run(main())
    assert peak == 4
    assert messages <= 4, "400 limited steps took few round trips (one per grant: ~800)"


def test_idle_permits_go_back_so_another_shard_gets_them(run: Run) -> None:
    async def main() -> int:
        world = World(size=2, shards=2)
        await world.register()
        first, second = world.shards
        await asyncio.gather(*(first.step(world) for _ in range(10)))
        await _settle()  # first has nothing waiting now: its permits went back
        hold = asyncio.Event()
        steps = [asyncio.ensure_future(second.step(world, hold)) for _ in range(2)]
        await _settle()
        running = second.running
        hold.set()
        await asyncio.gather(*steps)
        return running

    assert run(main()) == 2


def test_a_starving_shard_gets_its_fair_share_while_the_other_still_has_work(run: Run) -> None:
    async def main() -> tuple[int, int, int]:
        world = World(size=4, shards=2)
        await world.register()
        busy, starving = world.shards
        release = asyncio.Event()
        # busy takes every permit and keeps steps waiting for them
        held = [asyncio.ensure_future(busy.step(world)) for _ in range(200)]
        await _settle(5)
        waiting = [asyncio.ensure_future(starving.step(world, release)) for _ in range(2)]
        for _ in range(200):  # until the recall moved two permits over
            await asyncio.sleep(0)
            if starving.running == 2:
                break
        got = starving.running
        busy_left = sum(not t.done() for t in held)
        release.set()
        await asyncio.gather(*held, *waiting)
        return got, busy_left, world.peak

    got, busy_left, peak = run(main())
    assert got == 2, "the starving shard holds its fair share (4 // 2)"
    assert busy_left > 0, "...while the busy shard still had steps waiting"
    assert peak <= 4


def test_a_lost_shards_permits_go_to_the_others(run: Run) -> None:
    async def main() -> int:
        world = World(size=3, shards=2)
        await world.register()
        lost, survivor = world.shards
        never = asyncio.Event()
        stuck = [asyncio.ensure_future(lost.step(world, never)) for _ in range(3)]
        await _settle()
        assert lost.running == 3
        done = asyncio.gather(*(survivor.step(world) for _ in range(30)))
        await _settle()
        assert not done.done()  # every permit is held by the shard about to be lost
        await world.arbiter.shard_gone(lost.key)
        await done
        for task in stuck:
            task.cancel()
        return survivor.ran

    assert run(main()) == 30


def test_a_step_cancelled_while_waiting_leaves_no_permit_behind(run: Run) -> None:
    async def main() -> int:
        world = World(size=1, shards=1)
        await world.register()
        shard = world.shards[0]
        hold = asyncio.Event()
        holder = asyncio.ensure_future(shard.step(world, hold))
        await _settle()
        waiter = asyncio.ensure_future(shard.step(world))
        await _settle()
        waiter.cancel()
        await _settle()
        hold.set()
        await holder
        await asyncio.gather(*(shard.step(world) for _ in range(5)))
        return shard.ran

    assert run(main()) == 6  # the holder and five more; the cancelled one never ran
