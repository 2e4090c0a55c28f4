"""RunConfig: the settings of a batch run, from a TOML file, CLI flags or keyword arguments.

A TOML file may hold a ``[run]`` table (workers, max_in_flight, ordered, hard_timeout,
batch_size, startup_timeout, backend), ``[limits]`` / ``[rate_limits]`` tables and, for
``backend = "ray"``, a ``[ray]`` table (:class:`RaySettings`); flags given on the command line
win.

One schema (:data:`SETTINGS`) checks every way a config arrives -- the TOML file, keyword
arguments, and the ``config`` object of a run directory's ``run.json`` -- so a wrong value is
refused the same way wherever it was written: ``config 'run.workers': expected an integer >= 1,
got "two"``. Booleans are booleans (``ordered = "yes"`` is refused, not taken as true) and an
integer is never a boolean.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import orjson

from shardflow._text import did_you_mean
from shardflow.errors import ConfigError
from shardflow.limits.rates import parse_rate


@dataclass(frozen=True, slots=True)
class Setting:
    """What one setting must be: ``int``, ``float`` (an int is accepted), ``bool``, ``str``
    (one of ``choices`` when given) or ``list`` (of strings), at least ``minimum`` (strictly
    above it when ``above``), ``None`` allowed when ``optional``."""

    kind: type
    minimum: float | None = None
    above: bool = False
    optional: bool = False
    choices: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.choices:
            return "one of " + ", ".join(map(repr, self.choices))
        noun = {int: "an integer", float: "a number", bool: "true or false",
                str: "a string", list: "a list of strings"}[self.kind]
        if self.minimum is not None:
            noun += f" {'>' if self.above else '>='} {self.minimum:g}"
        return noun

    def check(self, key: str, value: Any) -> None:
        if value is None and self.optional:
            return
        wanted = (int, float) if self.kind is float else (self.kind,)
        ok = isinstance(value, wanted) and (self.kind is bool or not isinstance(value, bool))
        if ok and self.kind is list:
            ok = all(isinstance(item, str) for item in value)
        if ok and self.minimum is not None:
            ok = value > self.minimum if self.above else value >= self.minimum
        if ok and self.choices:
            ok = value in self.choices
        if not ok:
            raise ConfigError(key, f"expected {self.describe()}, got {_shown(value)}")


SETTINGS: dict[str, Setting] = {
    "workers": Setting(int, 1),
    "max_in_flight": Setting(int, 1),
    "ordered": Setting(bool),
    "hard_timeout": Setting(float, 0, above=True, optional=True),
    "batch_size": Setting(int, 1, optional=True),
    "startup_timeout": Setting(float, 0, above=True),
    "backend": Setting(str, choices=("process", "ray")),
}
"""The scalar settings (the ``[run]`` table); ``limits`` and ``rate_limits`` are tables of
their own, checked by :func:`check_limits`, and so is ``[ray]`` (:data:`RAY_SETTINGS`)."""
TABLES = ("limits", "rate_limits")

RAY_SETTINGS: dict[str, Setting] = {
    "address": Setting(str, optional=True),
    "working_dir": Setting(str, optional=True),
    "batch_size": Setting(int, 1),
    "batch_bytes": Setting(int, 1),
    "calls_in_flight": Setting(int, 1),
    "connect_timeout": Setting(float, 0, above=True),
    "excludes": Setting(list),
    "env": Setting(list),
    "ship_shardflow": Setting(bool),
}
"""The ``[ray]`` table, checked by the same rules."""


def _shown(value: Any) -> str:
    """A value as the user wrote it (JSON/TOML spelling: ``"two"``, ``true``)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return repr(value)


def check_limits(limits: Mapping[str, Any], rate_limits: Mapping[str, Any], prefix: str = "") -> None:
    """Concurrency limits are integers >= 1, rate limits rates such as ``"100/s"``."""
    for name, size in limits.items():
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ConfigError(f"{prefix}limits.{name}", f"expected an integer >= 1, got {_shown(size)}")
    for name, rate in rate_limits.items():
        try:
            parse_rate(name, rate)
        except ConfigError as exc:
            raise ConfigError(f"{prefix}rate_limits.{name}", str(exc).split(": ", 1)[1]) from None


@dataclass(frozen=True, slots=True)
class RaySettings:
    """The ``[ray]`` table: where the cluster is and how work is batched to its actors.

    The defaults come from the prototype's measurements (issue 10): 256 instances per call
    with 4 calls in flight per actor matched the process backend, and results over ~100 KB
    per call went through Ray's object store at 6-8x the CPU."""

    address: str | None = None
    """``auto``, ``HOST:PORT`` or ``ray://...``; ``None``: ``RAY_ADDRESS``, else a local Ray
    started for the run and shut down after it."""
    working_dir: str | None = None
    """Shipped to every node (Ray's ``runtime_env``); ``None``: the current directory when
    the target is a relative ``file.py:attr`` reference, else nothing."""
    batch_size: int = 256
    batch_bytes: int = 100_000
    calls_in_flight: int = 4
    connect_timeout: float = 30.0
    """Seconds joining ``address`` may take before the run stops (exit 2) naming it."""
    excludes: list[str] = field(default_factory=list)
    """``.gitignore``-style patterns kept out of the shipped working directory, besides
    the run directories, the run's input and output, ``.venv`` and what ``.gitignore`` ignores."""
    env: list[str] = field(default_factory=list)
    """``NAME`` (the driver's value, read at each start, never recorded) or ``NAME=VALUE``:
    environment variables set on the shard actors."""
    ship_shardflow: bool = False
    """Ship the driver's shardflow package to the nodes (Ray's ``py_modules``) instead of
    requiring it installed there at the same version."""

    def __post_init__(self) -> None:
        for name, setting in RAY_SETTINGS.items():
            setting.check(f"ray.{name}", getattr(self, name))


def ray_settings(table: Mapping[str, Any], prefix: str = "ray.") -> RaySettings:
    """A ``[ray]`` table (or ``run.json``'s ``config.ray``) as :class:`RaySettings`."""
    if not isinstance(table, Mapping):
        raise ConfigError(prefix.rstrip("."), f"expected a table, got {_shown(table)}")
    for key, value in table.items():
        setting = RAY_SETTINGS.get(key)
        if setting is None:
            raise ConfigError(f"{prefix}{key}", "unknown setting" + did_you_mean(key, RAY_SETTINGS)
                              + f"; expected one of {', '.join(RAY_SETTINGS)}")
        setting.check(f"{prefix}{key}", value)
    return RaySettings(**table)


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
        for name, setting in SETTINGS.items():
            setting.check(name, getattr(self, name))
        check_limits(self.limits, self.rate_limits)
        if not isinstance(self.ray, RaySettings):  # a table, as TOML or run.json spell it
            object.__setattr__(self, "ray", ray_settings(self.ray))

    def merged(self, **overrides: Any) -> RunConfig:
        """A copy with every override that is not ``None`` applied (limits are merged)."""
        values = {k: v for k, v in overrides.items() if v is not None}
        for key in TABLES:
            if key in values:
                values[key] = {**getattr(self, key), **values[key]}
        return replace(self, **values)

    def to_dict(self) -> dict[str, Any]:
        """The settings as ``run.json`` and ``--summary-json`` spell them."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["ray"] = asdict(self.ray)
        return data


assert set(SETTINGS) | set(TABLES) | {"ray"} == {f.name for f in fields(RunConfig)}


def load_config(path: str | Path) -> RunConfig:
    """Read a TOML config file; unknown keys are errors naming the key and the file."""
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text())
    except FileNotFoundError:
        raise ConfigError("config", f"config file {str(file)!r} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config", f"{file}: {exc}") from None
    try:
        return config_from_mapping(data, str(file))
    except ConfigError as exc:
        exc.origin = str(file)  # a key of this file, not a flag of the same name
        raise


def _table(data: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(where, f"expected a table, got {_shown(value)}")
    return dict(value)


def config_from_mapping(data: Mapping[str, Any], source: str = "config") -> RunConfig:
    """A TOML config's tables (``[run]``, ``[limits]``, ``[rate_limits]``) as a RunConfig."""
    unknown = set(data) - {"run", *TABLES, "ray"}
    if unknown:
        first = sorted(unknown)[0]
        raise ConfigError(first, f"{source}: unknown table" + did_you_mean(first, ["run", *TABLES, "ray"])
                          + "; expected [run], [limits], [rate_limits], [ray]")
    run = _table(data, "run", "run")
    settings = {name: _table(data, name, name) for name in (*TABLES, "ray")}
    return _checked(run, settings, "run.", source)


def config_from_record(data: Mapping[str, Any], source: str) -> RunConfig:
    """``run.json``'s ``config`` object (as :meth:`RunConfig.to_dict` wrote it)."""
    settings = dict(data)
    tables = {name: settings.pop(name, {}) for name in (*TABLES, "ray")}
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise ConfigError(name, f"{source}: expected an object, got {_shown(table)}")
    return _checked(settings, tables, "", source)


def _checked(scalars: dict[str, Any], tables: dict[str, dict[str, Any]], prefix: str,
             source: str) -> RunConfig:
    for key, value in scalars.items():
        setting = SETTINGS.get(key)
        if setting is None:
            raise ConfigError(f"{prefix}{key}", f"{source}: unknown setting" + did_you_mean(key, SETTINGS)
                              + f"; expected one of {', '.join(SETTINGS)}")
        setting.check(f"{prefix}{key}", value)
    check_limits(tables["limits"], tables["rate_limits"])
    return RunConfig(**scalars, limits=tables["limits"], rate_limits=tables["rate_limits"],
                     ray=ray_settings(tables.get("ray", {})))


def parse_limit_flags(flags: tuple[str, ...], kind: str) -> dict[str, Any]:
    """``NAME=VALUE`` flags into a dict (ints for ``limits``, strings for ``rate_limits``).
    A name given twice with different values is refused: which one was meant?"""
    parsed: dict[str, Any] = {}
    for flag in flags:
        name, sep, text = flag.partition("=")
        if not sep or not name:
            raise ConfigError(kind, f"{flag!r} must look like NAME=VALUE")
        value: Any = text
        if kind == "limits":
            try:
                value = int(text)
            except ValueError:
                raise ConfigError(f"limits.{name}", f"expected an integer >= 1, got {text!r}") from None
        if name in parsed and parsed[name] != value:
            raise ConfigError(f"{kind}.{name}", f"given twice with different values "
                              f"({parsed[name]} and {value}); give it once")
        parsed[name] = value
    return parsed
