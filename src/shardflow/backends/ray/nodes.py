"""Before the run: every node that can host a shard actor has shardflow, at the driver's version.

Without this, a node lacking shardflow ended a run in 7.7 s with exit 2 and a raw traceback
naming no node, while two healthy nodes were there. A zero-CPU task pinned to each alive
node imports shardflow (its function is pickled by reference, so loading it is the check)
and answers the version; the run stops with one line naming every node that failed. The
task gets the actors' environment (``--ray-env``): a ``PYTHONPATH`` there decides which
shardflow they import.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
from typing import Any

import ray
from ray.exceptions import RayError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from shardflow.errors import ConfigError


def installed_version() -> str:
    """The shardflow version this interpreter has installed (run on each node too; a
    shardflow shipped with ``py_modules`` has no metadata there: ``shipped``)."""
    try:
        return importlib.metadata.version("shardflow")
    except importlib.metadata.PackageNotFoundError:
        return "shipped"


_VERSION: Any = ray.remote(num_cpus=0, max_retries=0)(installed_version)


def shard_nodes() -> list[dict[str, Any]]:
    """Alive nodes with a CPU (where shard actors can go)."""
    nodes: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
    return [n for n in nodes if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) > 0]


def node_name(node: dict[str, Any]) -> str:
    return f"{node.get('NodeManagerAddress', '?')} (node {str(node.get('NodeID', '?'))[:12]})"


async def check_nodes(seconds: float, *, same_version: bool = True,
                      env: dict[str, str] | None = None) -> None:
    """Raise one :class:`ConfigError` naming each node whose shardflow (in the environment
    ``env`` the actors get) is missing, or (with ``same_version``) differs from the driver's."""
    nodes = shard_nodes()
    wanted = installed_version() if same_version else None
    problems = await asyncio.gather(*(_problem(node, seconds, wanted, env) for node in nodes))
    wrong = [f"{node_name(node)}: {problem}"
             for node, problem in zip(nodes, problems, strict=True) if problem]
    if wrong:
        raise ConfigError("ray.address", (
            f"shardflow {installed_version()} is not what these Ray nodes import: "
            f"{'; '.join(wrong)}; install shardflow=={installed_version()} there, or ship it "
            "with --ray-ship-shardflow"))


async def _problem(node: dict[str, Any], seconds: float, wanted: str | None,
                   env: dict[str, str] | None) -> str | None:
    """What is wrong with the node's shardflow; ``None`` when nothing is, or when the node
    does not answer in time (too busy, or leaving: its actors will tell more)."""
    options: dict[str, Any] = {
        "scheduling_strategy": NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)}
    if env:
        options["runtime_env"] = {"env_vars": env}
    try:
        async with asyncio.timeout(seconds):
            version: str = await _VERSION.options(**options).remote()
    except TimeoutError:
        return None
    except RayError as exc:
        lines = [line for line in str(exc).splitlines() if "Error" in line]
        return f"cannot import shardflow ({lines[-1].strip() if lines else type(exc).__name__})"
    return None if wanted in (None, version) else f"has shardflow {version}"
