"""What the commands that run a workflow share: where targets are imported from
(``--app-dir``), loading and checking a target, the run settings made of a config file and
limit flags, and the backend flags over them."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

import click

from shardflow.batch.config import RunConfig, load_config, parse_limit_flags
from shardflow.cli.conventions import option
from shardflow.model.loader import load_workflow, use_app_dir

F = TypeVar("F", bound=Callable[..., Any])


# -- --app-dir: where module:attribute targets are imported from (issue 12, item 1) -------------
def _use_app_dir(ctx: click.Context, param: click.Parameter, value: str) -> str:
    use_app_dir(value)
    return value


app_dir_option = option(
    "--app-dir", default=".", show_default="the current directory", is_eager=True,
    expose_value=False, callback=_use_app_dir, type=click.Path(exists=True, file_okay=False),
    help="Import module:attribute targets from this directory first (workers too).")
# ---------------------------------------------------------------------------------------------


def load_target(target: str) -> Any:
    """The workflow ``target`` names, validated (every problem at once)."""
    definition = load_workflow(target)
    definition.check()
    return definition


def settings_options(config_help: str, limit_help: str, rate_help: str) -> Callable[[F], F]:
    """``-c/--config``, ``--limit`` and ``--rate-limit`` (parameters ``config_path``,
    ``limit_flags``, ``rate_flags``): what :func:`run_config` merges, with each command's help."""

    def decorate(command: F) -> F:
        command = option("--rate-limit", "rate_flags", metavar="NAME=RATE", multiple=True,
                         help=rate_help)(command)
        command = option("--limit", "limit_flags", metavar="NAME=SIZE", multiple=True,
                         help=limit_help)(command)
        return option("-c", "--config", "config_path", metavar="FILE", default=None,
                      help=config_help)(command)

    return decorate


def run_config(config_path: str | None, limit_flags: tuple[str, ...],
            rate_flags: tuple[str, ...]) -> RunConfig:
    """The config file (if any) with the limit flags over it."""
    config = load_config(config_path) if config_path else RunConfig()
    return config.merged(limits=parse_limit_flags(limit_flags, "limits") or None,
                         rate_limits=parse_limit_flags(rate_flags, "rate_limits") or None)


# -- --backend ray (issue 10): the flags over the config's [run] backend and [ray] table -------
def with_backend(config: RunConfig, backend: str | None, **ray_flags: Any) -> RunConfig:
    """Apply the backend flags (``ray_flags``: ``[ray]`` settings, ``None`` when not given);
    choosing Ray without it installed is one clear error (exit 2, naming the install
    command) before anything starts."""
    given = {key: value for key, value in ray_flags.items() if value is not None}
    settings = dataclasses.replace(config.ray, **given) if given else config.ray
    config = dataclasses.replace(config, backend=backend or config.backend, ray=settings)
    if config.backend == "ray":
        import shardflow.backends.ray  # noqa: F401  (raises ConfigError without Ray)
        from shardflow.backends.ray.cluster import check_settings

        check_settings(config.ray)
    return config
# ---------------------------------------------------------------------------------------------
