"""Connecting to Ray for one run: an existing cluster, or a local Ray started for the run.

``ray.init`` takes 2.5-9 s, and against an address nobody answers it waits for ever (more
than 10 minutes measured). So it runs on a daemon thread the run waits for with a deadline
(``[ray] connect_timeout``, 30 s): past it, or when the cluster refuses this driver, the run
stops with one line naming the address (exit 2), and a signal stops the wait at once (an
abandoned thread neither holds the process at exit nor keeps a Ray it joins late).

What ships to the nodes (:mod:`~shardflow.backends.ray.shipping`): with a relative
``file.py:attr`` target the current directory (or ``working_dir`` when set), packed without
the run's data; otherwise ``module:attr`` targets and absolute file paths must be
importable on every node, and the driver's import path is handed to the actors (on one
machine they find what the driver finds). ``ship_shardflow`` adds shardflow itself.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import shutil
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray

from shardflow.backends.ray.ray_logging import NativeLines, route_process_lines, route_ray_loggers
from shardflow.backends.ray.shipping import pack, rebase_target, run_data
from shardflow.batch.config import RaySettings
from shardflow.errors import ConfigError

_log = logging.getLogger("shardflow")
SHARDFLOW_PACKAGE = Path(__file__).resolve().parents[2]
"""The driver's shardflow package directory (what ``ship_shardflow`` sends)."""


@dataclass(slots=True)
class Cluster:
    owned: bool
    """We started or joined this Ray (and disconnect after the run)."""
    shipped: Path | None = None
    """The working directory that went to the nodes: the actors' current directory is a
    copy of it."""
    env: dict[str, str] = field(default_factory=dict)
    """Environment variables set on the actors (``--ray-env``)."""
    keeper: threading.Event | None = None
    """Set to let the thread that ran ``ray.init`` end: a local Ray's processes die with
    the thread that started them (Ray sets their parent-death signal)."""

    async def shutdown(self) -> None:
        if self.owned:
            await asyncio.to_thread(ray.shutdown)
        if self.keeper is not None:
            self.keeper.set()


def is_file_target(target: str) -> bool:
    module_ref = target.rpartition(":")[0]
    return module_ref.endswith(".py") or "/" in module_ref or "\\" in module_ref


async def connect(settings: RaySettings, target: str, workers: int,
                  run_dir: Path | None = None) -> Cluster:
    """Join ``settings.address`` (or ``RAY_ADDRESS``), or start a local Ray with enough CPUs
    for ``workers`` shard actors; reuse a Ray this process already joined."""
    env = actor_env(settings.env)
    if ray.is_initialized():
        return Cluster(owned=False, env=env)
    address = settings.address or os.environ.get("RAY_ADDRESS") or None
    check_address(address)
    use_token_auth()
    working_dir = settings.working_dir
    if working_dir is None and is_file_target(target) and not os.path.isabs(target):
        working_dir = os.getcwd()
    options: dict[str, Any] = {"configure_logging": False, "include_dashboard": False}
    if address is not None:
        options["address"] = address
    else:
        options["num_cpus"] = max(workers, os.cpu_count() or 1)
    runtime_env: dict[str, Any] = {}
    package = None
    if working_dir is not None:
        skip = run_data(run_dir) if run_dir is not None else []
        package = await asyncio.to_thread(pack, Path(working_dir), excludes=settings.excludes,
                                          skip=skip)
        _log.info(package.describe())
        runtime_env["working_dir"] = str(package.path)
    if settings.ship_shardflow:
        runtime_env["py_modules"] = [str(SHARDFLOW_PACKAGE)]
    if runtime_env:
        options["runtime_env"] = runtime_env
    route_ray_loggers()
    try:
        keeper = await _init(options, address, settings.connect_timeout)
        route_process_lines()
    finally:
        if package is not None:
            shutil.rmtree(package.path.parent, ignore_errors=True)
    return Cluster(owned=True, shipped=package.root if package is not None else None, env=env,
                   keeper=keeper)


def check_settings(settings: RaySettings) -> None:
    """What can be refused before a run starts (the command line calls it): a ``ray://``
    address without Ray Client, a ``--ray-env`` entry with no value."""
    check_address(settings.address or os.environ.get("RAY_ADDRESS") or None)
    actor_env(settings.env)


def check_address(address: str | None) -> None:
    """``ray://`` goes through Ray Client, which needs ``ray[client]`` (gRPC)."""
    if address is not None and address.startswith("ray://") and (
            importlib.util.find_spec("grpc") is None):
        raise ConfigError("ray.address", f"{address} is a Ray Client address, which needs "
                          "pip install 'ray[client]'; or give the cluster's HOST:PORT (its GCS "
                          "address) instead")


def use_token_auth() -> None:
    """A token in ``RAY_AUTH_TOKEN`` / ``RAY_AUTH_TOKEN_PATH`` means token authentication:
    Ray also wants ``RAY_AUTH_MODE=token`` and otherwise fails after ~20 s with a long
    traceback, so it is set here unless the user set a mode."""
    if "RAY_AUTH_MODE" in os.environ:
        return
    if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH"):
        os.environ["RAY_AUTH_MODE"] = "token"
        # Ray reads its config once, at import: read the mode again
        importlib.import_module("ray._raylet").Config.initialize("")


def actor_env(entries: list[str]) -> dict[str, str]:
    """``--ray-env NAME`` (the value here) or ``NAME=VALUE`` as the actors' environment."""
    env: dict[str, str] = {}
    for entry in entries:
        name, sep, value = entry.partition("=")
        if not name or not name.replace("_", "a").isalnum() or name[0].isdigit():
            raise ConfigError("ray.env", f"{entry!r} is not NAME or NAME=VALUE")
        if not sep:
            if name not in os.environ:
                raise ConfigError("ray.env", f"{name} is not set here, so there is no value "
                                  "to pass on (give NAME=VALUE)")
            value = os.environ[name]
        env[name] = value
    return env


async def _init(options: dict[str, Any], address: str | None, seconds: float) -> threading.Event:
    """``ray.init(**options)`` on a daemon thread, waited for at most ``seconds``; the
    thread lives on until the returned event is set."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    abandoned = threading.Event()
    keeper = threading.Event()

    def settle(error: BaseException | None) -> None:
        if not done.done():
            if error is None:
                done.set_result(None)
            else:
                done.set_exception(error)

    def body() -> None:
        # Off the main thread on purpose too: there ``ray.init`` would replace the run's
        # SIGTERM handling (graceful stop, exit 143) with its own ``sys.exit``.
        worker_log = logging.getLogger("ray._private.worker")
        worker_log.addFilter(_not_the_sigterm_note)
        error: BaseException | None = None
        try:
            ray.init(**options)
        except BaseException as exc:  # handed to the waiting loop
            error = exc
        finally:
            worker_log.removeFilter(_not_the_sigterm_note)
        if abandoned.is_set():
            if error is None:
                ray.shutdown()  # joined after the run gave up on it
            return
        try:
            loop.call_soon_threadsafe(settle, error)
        except RuntimeError:  # the loop is gone: nobody waits any more
            if error is None:
                ray.shutdown()
            return
        keeper.wait()

    where = address or "a local Ray"
    _log.debug("joining %s (up to %g s)", where, seconds)
    def refused() -> None:  # no need to wait for Ray's own ~20 s of retries
        loop.call_soon_threadsafe(settle, ConnectionRefusedError("credentials refused"))

    native = NativeLines(refused)
    try:
        with native:
            threading.Thread(target=body, name="shardflow-ray-init", daemon=True).start()
            async with asyncio.timeout(seconds):
                await done
    except TimeoutError:
        abandoned.set()
        raise ConfigError("ray.address", (
            f"no Ray cluster answered at {where} within {seconds:g} s (is it up and reachable "
            "from here? wait longer with --ray-connect-timeout)")) from None
    except asyncio.CancelledError:
        abandoned.set()
        raise
    except Exception as exc:
        abandoned.set()
        why = (_REFUSED if native.refused else _first_line(exc))
        raise ConfigError("ray.address", f"cannot join the Ray cluster at {where}: "
                          f"{why}") from None
    return keeper


_REFUSED = ("it refused this driver's credentials (give the cluster's token in RAY_AUTH_TOKEN "
            "or RAY_AUTH_TOKEN_PATH)")


def _first_line(exc: BaseException) -> str:
    from ray.exceptions import AuthenticationError

    if isinstance(exc, AuthenticationError):
        return _REFUSED
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def _not_the_sigterm_note(record: logging.LogRecord) -> bool:
    """Ray notes that it set no SIGTERM handler off the main thread: that is what we want."""
    return "SIGTERM handler is not set" not in record.getMessage()


def actor_sys_path(cluster: Cluster) -> list[str]:
    """Import path entries for the actors: none when code was shipped (the copy wins)."""
    return [] if cluster.shipped is not None else [entry for entry in sys.path if entry]


def actor_target(cluster: Cluster, target: str) -> str:
    """``target`` as the actors must spell it: a ``file.py`` path re-based onto the shipped
    directory (their current directory), else made absolute (they start elsewhere)."""
    if not is_file_target(target):
        return target
    if cluster.shipped is not None:
        return rebase_target(target, cluster.shipped)
    path, _, attr = target.rpartition(":")
    return f"{os.path.abspath(path)}:{attr}"
