"""RunConfig: the settings of a batch run, from a TOML file, CLI flags or keyword arguments.

A TOML file may hold a ``[run]`` table (workers, max_in_flight, ordered, hard_timeout,
batch_size, startup_timeout) and ``[limits]`` / ``[rate_limits]`` tables; flags given on the command line win.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from shardflow.errors import ConfigError


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

    def __post_init__(self) -> None:
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


_RUN_KEYS = {f.name for f in fields(RunConfig)} - {"limits", "rate_limits"}


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
    unknown = set(data) - {"run", "limits", "rate_limits"}
    if unknown:
        raise ConfigError(sorted(unknown)[0], f"{source}: unknown table; expected [run], [limits], [rate_limits]")
    run = dict(data.get("run", {}))
    for key in run:
        if key not in _RUN_KEYS:
            raise ConfigError(f"run.{key}", f"{source}: unknown setting")
    try:
        return RunConfig(limits=dict(data.get("limits", {})),
                         rate_limits=dict(data.get("rate_limits", {})), **run)
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
