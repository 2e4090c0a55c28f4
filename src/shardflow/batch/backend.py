"""Which pool runs the shards: the one thing that differs between backends.

The coordinator and the embedding API talk to a :class:`Pool` only; ``process`` is
:class:`~shardflow.batch.pool.WorkerPool`. Other backends live above this layer
(``shardflow.backends``), so they are named here by reference and imported only when chosen:
``import shardflow`` never imports Ray, and batch never imports a layer above it.
"""

from __future__ import annotations

import importlib
from collections import Counter
from pathlib import Path
from typing import Any, Protocol

from shardflow.batch.config import RunConfig
from shardflow.batch.jobs import Feed, Job
from shardflow.batch.listener import ResultListener
from shardflow.batch.pool import WorkerPool
from shardflow.batch.spec import WorkerSpec

_PLUGINS = {"ray": "shardflow.backends.ray.pool:RayPool"}
"""Backend name -> ``module:class`` of its pool (constructed like :func:`make_pool` says)."""


class LimitsReport(Protocol):
    def report(self) -> dict[str, Any]: ...


class Pool(Protocol):
    """What the coordinator and :class:`~shardflow.run.executor.BatchExecutor` use."""

    step_stats: dict[tuple[int, int], dict[str, list[float]]]
    cpu_seconds: dict[tuple[int, int], float]
    failures: dict[tuple[int, int], dict[str, dict[str, int]]]
    """(slot, incarnation) -> step -> error type -> failed instances, as each shard counted."""
    given_up: Counter[tuple[str, str]]
    """(step, error type) of the instances the pool itself failed (WorkerLost, HardTimeout)."""
    restarts: int
    hard_timeouts: int
    start_failures: int

    @property
    def arbiter(self) -> LimitsReport | None: ...

    @property
    def error(self) -> BaseException | None: ...

    @property
    def in_flight(self) -> int: ...

    async def start(self) -> None: ...

    async def wait_idle(self) -> None: ...

    async def close(self, *, kill: bool = False) -> None: ...

    def dispatch(self) -> None: ...

    def submit(self, job: Job) -> None: ...

    def worker_pids(self) -> list[int]: ...


def make_pool(config: RunConfig, spec: WorkerSpec, feed: Feed, listener: ResultListener, *,
              hard_timeout: float, scratch_dir: Path | None = None) -> Pool:
    """The pool of ``config.backend`` for one run (or one executor)."""
    if config.backend == "process":
        return WorkerPool(spec, config.workers, feed, listener, batch_size=config.batch_size,
                          hard_timeout=hard_timeout, startup_timeout=config.startup_timeout,
                          scratch_dir=scratch_dir)
    module, _, name = _PLUGINS[config.backend].partition(":")
    pool_class = getattr(importlib.import_module(module), name)
    pool: Pool = pool_class(spec, config, feed, listener, hard_timeout=hard_timeout,
                            run_dir=scratch_dir)
    return pool
