"""An error names what the user wrote: the flag (``--input``), the environment variable
(``SHARDFLOW_INPUT``) or the config file and key (``run.toml: config 'run.workers'``), never
a config key they did not write.

A :class:`~shardflow.errors.ConfigError` carries the setting's key (``input``,
``limits.db``); the command's context says where its value came from.
"""

from __future__ import annotations

import click
from click.core import ParameterSource

from shardflow.errors import ConfigError

PARAMETERS = {"input": "input_path", "output": "output_path", "format": "fmt",
              "limits": "limit_flags", "rate_limits": "rate_flags", "config": "config_path",
              "redis": "redis_url", "ray.address": "address", "ray.env": "ray_env",
              "ray.working_dir": "ray_working_dir", "ray.excludes": "ray_excludes",
              "ray.connect_timeout": "ray_connect_timeout",
              "ray.ship_shardflow": "ray_ship_shardflow"}
"""Setting key (or the table of a key such as ``limits.db``) -> the command's parameter,
where their names differ."""


def _parameter(ctx: click.Context, key: str) -> tuple[click.Parameter | None, str]:
    """The parameter that sets ``key``, and what of it the key names beyond the flag (the
    ``db`` of ``limits.db``: ``--limit db``)."""
    if key in PARAMETERS:
        name, sub = PARAMETERS[key], ""
    else:
        root, _, sub = key.partition(".")
        name = PARAMETERS.get(root, root)
    return next((p for p in ctx.command.params if p.name == name), None), sub


def describe(exc: ConfigError, ctx: click.Context | None) -> str:
    """The one line for ``exc``: ``--input: input file 'x' does not exist``, ``--limit db:
    expected an integer >= 1, got 'x'``, ``SHARDFLOW_WORKERS: ...``, ``run.toml: config
    'run.workers': ...``, or only the reason when the value was no one's choice (a default)."""
    if exc.origin is not None:
        return f"{exc.origin}: {exc}"
    if ctx is None:
        return str(exc)
    param, sub = _parameter(ctx, exc.key)
    if param is None or param.name is None:
        return exc.reason  # a check of the command itself (``resume``): no setting to name
    source = ctx.get_parameter_source(param.name)
    if source == ParameterSource.COMMANDLINE:
        if isinstance(param, click.Option):
            flag = max(param.opts, key=len)
            return f"{flag}{' ' + sub if sub else ''}: {exc.reason}"
        return exc.reason  # an argument: the reason names the value given
    if source == ParameterSource.ENVIRONMENT and isinstance(param, click.Option):
        var = param.envvar if isinstance(param.envvar, str) else None
        if var:
            return f"{var}{' (' + sub + ')' if sub else ''}: {exc.reason}"
    if ctx.params.get("config_path"):
        return f"{ctx.params['config_path']}: {exc}"
    return exc.reason
