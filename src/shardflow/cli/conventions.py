"""What every ``shardflow`` command shares, so it behaves like the tools people know:
``-h``/``--help``, defaults shown in help, each option also read from ``SHARDFLOW_<OPTION>``
(shown in help), and the options that go anywhere: ``--debug``, ``-v``/``-q``/``--log-level``,
accepted before the subcommand (``shardflow --debug run ...``) and after it
(``shardflow run ... --debug``), as git and docker users expect."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

import click
from click.core import ParameterSource

from shardflow._text import did_you_mean
from shardflow.cli.logging_setup import LEVELS, configure, level_for

F = TypeVar("F", bound=Callable[..., Any])

CONTEXT_SETTINGS: dict[str, Any] = {
    "help_option_names": ["-h", "--help"],
    "show_default": True,
    "auto_envvar_prefix": "SHARDFLOW",
    "max_content_width": 100,
}
"""For the ``shardflow`` group; click hands them down to every command. Options of the top
commands name their variable themselves (:class:`EnvOption`); those of ``tasks``/``runs``
subcommands get click's automatic ``SHARDFLOW_<COMMAND>_<SUBCOMMAND>_<OPTION>``."""


class EnvOption(click.Option):
    """An option that is also read from ``SHARDFLOW_<OPTION>`` (``--max-in-flight`` ->
    ``SHARDFLOW_MAX_IN_FLIGHT``, whatever its Python name) and says so in ``--help``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("show_envvar", True)
        super().__init__(*args, **kwargs)
        if self.envvar is None:
            long_name = next(o for o in self.opts if o.startswith("--"))
            self.envvar = "SHARDFLOW_" + long_name[2:].replace("-", "_").upper()


def option(*decls: str, **attrs: Any) -> Callable[[F], F]:
    """``click.option`` with :class:`EnvOption`."""
    return click.option(*decls, cls=EnvOption, **attrs)


class SubcommandEnvOption(click.Option):
    """An option of a ``tasks``/``runs`` subcommand, read from
    ``SHARDFLOW_<GROUP>_<COMMAND>_<OPTION>`` (``SHARDFLOW_TASKS_LIST_ASSIGNEE``,
    ``SHARDFLOW_RUNS_LIST_JSON``): click's automatic prefix, with the option's own name rather
    than its Python name, and shown in help."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("show_envvar", True)
        super().__init__(*args, **kwargs)

    def _name_for(self, ctx: click.Context) -> None:
        if self.envvar is None and ctx.auto_envvar_prefix is not None:
            long_name = next(o for o in self.opts if o.startswith("--"))
            self.envvar = f"{ctx.auto_envvar_prefix}_{long_name[2:].replace('-', '_').upper()}"

    def resolve_envvar_value(self, ctx: click.Context) -> str | None:
        self._name_for(ctx)
        return super().resolve_envvar_value(ctx)

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        self._name_for(ctx)
        return super().get_help_record(ctx)


def sub_option(*decls: str, **attrs: Any) -> Callable[[F], F]:
    """``click.option`` with :class:`SubcommandEnvOption`."""
    return click.option(*decls, cls=SubcommandEnvOption, **attrs)


COMMAND_CONTEXT = "shardflow.command"
"""``ctx.meta`` key of the running command's context: the error handler of the ``shardflow``
group reads which flags the user gave there (``ctx.meta`` is shared by the whole chain)."""
DEBUG = "shardflow.debug"
"""``ctx.meta`` key: ``--debug`` was given, before or after the subcommand."""


def global_counts(ctx: click.Context) -> tuple[int, int]:
    """``-v`` and ``-q`` given before the subcommand (the ``shardflow`` group's own)."""
    root = ctx.find_root()
    return int(root.params.get("verbose") or 0), int(root.params.get("quiet") or 0)


def logging_options(command: F) -> F:
    """``--debug``, ``-v``/``-q``/``--log-level``: set up logging before the command body
    runs, counting the ones given before the subcommand too. ``-v`` with ``-q`` is refused;
    ``--log-level`` on the command line with either too."""

    @functools.wraps(command)
    def configured(*args: Any, verbose: int, quiet: int, log_level: str | None, debug: bool,
                   **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        ctx.meta[COMMAND_CONTEXT] = ctx
        if debug:
            ctx.meta[DEBUG] = True
        before_verbose, before_quiet = global_counts(ctx)
        verbose, quiet = verbose + before_verbose, quiet + before_quiet
        if verbose and quiet:
            raise click.UsageError("-v/--verbose and -q/--quiet contradict each other; give one")
        if (verbose or quiet) and ctx.get_parameter_source("log_level") == ParameterSource.COMMANDLINE:
            raise click.UsageError("--log-level and -v/-q contradict each other; give one")
        configure(level_for(verbose, quiet, None if verbose or quiet else log_level))
        return command(*args, **kwargs)

    decorated = option("--log-level", type=click.Choice(LEVELS, case_sensitive=False), default=None,
                       show_default="info", help="Level of the messages on stderr.")(configured)
    decorated = click.option("--debug", is_flag=True, allow_from_autoenv=False,
                             help="Show tracebacks for errors (here or before the command).")(decorated)
    decorated = option("-q", "--quiet", count=True, show_default=False,
                       help="Fewer messages (-q: warnings and errors, -qq: errors only).")(decorated)
    decorated = option("-v", "--verbose", count=True, show_default=False,
                       help="More messages (-v: debug).")(decorated)
    return cast(F, decorated)


class SuggestingGroup(click.Group):
    """A command group whose "no such command" names the closest command and lists them all
    (click already suggests options)."""

    def resolve_command(self, ctx: click.Context,
                        args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            ctx.fail(f"no such command {args[0]!r}{did_you_mean(args[0], self.commands)}; "
                     f"the commands are: {', '.join(self.commands)}")
        return super().resolve_command(ctx, args)
