"""Connecting to Ray for one run: an existing cluster, or a local Ray started for the run.

``ray.init`` takes 2.5-9 s, so it runs in a thread: an asyncio service that embeds the
executor keeps serving while it connects. What ships to the nodes: with a relative
``file.py:attr`` target the current directory (or ``working_dir`` when set) goes as Ray's
``runtime_env`` ``working_dir`` (without run directories); otherwise ``module:attr`` targets
and absolute file paths must be importable on every node, and the driver's import path is
handed to the actors (on one machine they find what the driver finds).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from dataclasses import dataclass
from typing import Any

import ray

from shardflow.batch.config import RaySettings


@dataclass(slots=True)
class Cluster:
    owned: bool
    """We started this Ray (and shut it down after the run)."""
    shipped: bool
    """A working directory went to the nodes: the actors' current directory is a copy of it."""

    async def shutdown(self) -> None:
        if self.owned:
            await asyncio.to_thread(ray.shutdown)


def is_file_target(target: str) -> bool:
    module_ref = target.rpartition(":")[0]
    return module_ref.endswith(".py") or "/" in module_ref or "\\" in module_ref


async def connect(settings: RaySettings, target: str, workers: int) -> Cluster:
    """Join ``settings.address`` (or ``RAY_ADDRESS``), or start a local Ray with enough CPUs
    for ``workers`` shard actors; reuse a Ray this process already joined."""
    if ray.is_initialized():
        return Cluster(owned=False, shipped=False)
    working_dir = settings.working_dir
    if working_dir is None and is_file_target(target) and not os.path.isabs(target):
        working_dir = os.getcwd()
    options: dict[str, Any] = {"configure_logging": False, "include_dashboard": False}
    address = settings.address or os.environ.get("RAY_ADDRESS") or None
    if address is not None:
        options["address"] = address
    else:
        options["num_cpus"] = max(workers, os.cpu_count() or 1)
    if working_dir is not None:
        options["runtime_env"] = {"working_dir": working_dir, "excludes": [".shardflow", ".git"]}
    # Off the loop, and off the main thread on purpose: there ``ray.init`` would replace the
    # run's SIGTERM handling (graceful stop, exit 143) with its own ``sys.exit``.
    worker_log = logging.getLogger("ray._private.worker")
    worker_log.addFilter(_not_the_sigterm_note)
    try:
        await asyncio.to_thread(ray.init, **options)
    finally:
        worker_log.removeFilter(_not_the_sigterm_note)
    return Cluster(owned=True, shipped=working_dir is not None)


def _not_the_sigterm_note(record: logging.LogRecord) -> bool:
    """Ray notes that it set no SIGTERM handler off the main thread: that is what we want."""
    return "SIGTERM handler is not set" not in record.getMessage()


def actor_sys_path(cluster: Cluster) -> list[str]:
    """Import path entries for the actors: none when code was shipped (the copy wins)."""
    return [] if cluster.shipped else [entry for entry in sys.path if entry]


def actor_target(cluster: Cluster, target: str) -> str:
    """``target`` as the actors must spell it: a relative ``file.py`` path made absolute
    unless the directory it is relative to was shipped (the actors start elsewhere)."""
    if not is_file_target(target) or cluster.shipped:
        return target
    path, _, attr = target.rpartition(":")
    return f"{os.path.abspath(path)}:{attr}"
