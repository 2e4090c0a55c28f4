"""RunConfig: the settings of a batch run, from a TOML file, CLI flags or keyword arguments.

A TOML file may hold a ``[run]`` table (workers, max_in_flight, ordered, hard_timeout,
batch_size, startup_timeout, backend), ``[limits]`` / ``[rate_limits]`` tables and, for
``backend = "ray"``, a ``[ray]`` table (:class:`RaySettings`); flags given on the command line win.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from shardflow.errors import ConfigError

BACKENDS = ("process", "ray")


@dataclass(frozen=True, slots=True)
class RaySettings:
    """The ``[ray]`` table: where the cluster is and how work is batched to its actors.

    The defaults come from the prototype's measurements (ARCHITECTURE.md, section 3): 256
    instances per call with 4 calls in flight per actor matched the process backend, and
    results over ~100 KB per call went through Ray's object store at 6-8x the CPU."""

    address: str | None = None
    """``auto``, ``HOST:PORT`` or ``ray://...``; ``None``: ``RAY_ADDRESS``, else a local Ray
    started for the run and shut down after it."""
    working_dir: str | None = None
    """Shipped to every node (Ray's ``runtime_env``); ``None``: the current directory when
    the target is a relative ``file.py:attr`` reference, else nothing."""
    batch_size: int = 256
    batch_bytes: int = 100_000
    calls_in_flight: int = 4

    def __post_init__(self) -> None:
        for key in ("batch_size", "batch_bytes", "calls_in_flight"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"ray.{key}", f"must be a positive integer, got {value!r}")


@dataclass(frozen=True, slots=True)
class RunConfig:
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    max_in_flight: int = 1000
    ordered: bool = False
    hard_timeout: float | None = None
    batch_size: int | None = None
    startup_timeout: float = 60.0
    """Seconds a worker may take to load the workflow before the run stops, naming it."""
    limits: dict[str, int] = field(default_factory=dict)
    rate_limits: dict[str, str] = field(default_factory=dict)
    backend: str = "process"
    """Where the shards run: ``process`` (worker processes) or ``ray`` (actors on a cluster)."""
    ray: RaySettings = field(default_factory=RaySettings)

    def __post_init__(self) -> None:
        if isinstance(self.ray, dict):  # as a run's recorded config (asdict) holds it
            object.__setattr__(self, "ray", _ray_settings(self.ray, "ray"))
        if self.backend not in BACKENDS:
            raise ConfigError("backend", f"must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.workers < 1:
            raise ConfigError("workers", f"must be at least 1, got {self.workers}")
        if self.max_in_flight < 1:
            raise ConfigError("max_in_flight", f"must be at least 1, got {self.max_in_flight}")
        if self.hard_timeout is not None and self.hard_timeout <= 0:
            raise ConfigError("hard_timeout", "must be positive")
        if not self.startup_timeout > 0:
            raise ConfigError("startup_timeout", f"must be positive, got {self.startup_timeout}")
        for name, size in self.limits.items():
            if not isinstance(size, int) or isinstance(size, bool) or size < 1:
                raise ConfigError(f"limits.{name}", f"must be a positive integer, got {size!r}")

    def merged(self, **overrides: Any) -> RunConfig:
        """A copy with every override that is not ``None`` applied (limits are merged)."""
        values = {k: v for k, v in overrides.items() if v is not None}
        for key in ("limits", "rate_limits"):
            if key in values:
                values[key] = {**getattr(self, key), **values[key]}
        return replace(self, **values)


_RUN_KEYS = {f.name for f in fields(RunConfig)} - {"limits", "rate_limits", "ray"}
_RAY_KEYS = {f.name for f in fields(RaySettings)}


def _ray_settings(table: dict[str, Any], source: str) -> RaySettings:
    for key in table:
        if key not in _RAY_KEYS:
            raise ConfigError(f"ray.{key}", f"{source}: unknown setting")
    return RaySettings(**table)


def load_config(path: str | Path) -> RunConfig:
    """Read a TOML config file; unknown keys are errors naming the key and the file."""
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text())
    except FileNotFoundError:
        raise ConfigError("config", f"config file {str(file)!r} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config", f"{file}: {exc}") from None
    return config_from_mapping(data, str(file))


def config_from_mapping(data: dict[str, Any], source: str = "config") -> RunConfig:
    unknown = set(data) - {"run", "limits", "rate_limits", "ray"}
    if unknown:
        raise ConfigError(sorted(unknown)[0],
                          f"{source}: unknown table; expected [run], [limits], [rate_limits], [ray]")
    run = dict(data.get("run", {}))
    for key in run:
        if key not in _RUN_KEYS:
            raise ConfigError(f"run.{key}", f"{source}: unknown setting")
    try:
        return RunConfig(limits=dict(data.get("limits", {})),
                         rate_limits=dict(data.get("rate_limits", {})),
                         ray=_ray_settings(dict(data.get("ray", {})), source), **run)
    except TypeError as exc:
        raise ConfigError("run", f"{source}: {exc}") from None


def parse_limit_flags(flags: tuple[str, ...], kind: str) -> dict[str, Any]:
    """``NAME=VALUE`` flags into a dict (ints for ``limits``, strings for ``rate_limits``)."""
    parsed: dict[str, Any] = {}
    for flag in flags:
        name, sep, value = flag.partition("=")
        if not sep or not name:
            raise ConfigError(kind, f"{flag!r} must look like NAME=VALUE")
        if kind == "limits":
            try:
                parsed[name] = int(value)
            except ValueError:
                raise ConfigError(f"limits.{name}", f"{value!r} is not an integer") from None
        else:
            parsed[name] = value
    return parsed
