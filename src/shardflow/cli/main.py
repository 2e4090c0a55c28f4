"""The ``shardflow`` command: run, resume, validate, graph, bench, tasks, runs.

Exit codes are :data:`EXIT_CODES_HELP` (``validate`` exits 1 when it finds problems).
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import click

from shardflow._interrupt import command_ready
from shardflow._text import plural
from shardflow.cli.conventions import (
    COMMAND_CONTEXT,
    CONTEXT_SETTINGS,
    DEBUG,
    SuggestingGroup,
    logging_options,
    option,
)
from shardflow.cli.error_names import describe
from shardflow.cli.limits_check import limit_problems, warn_unused_limits
from shardflow.cli.metrics_option import metrics_options
from shardflow.cli.run_settings import (
    app_dir_option,
    load_target,
    run_config,
    settings_options,
    with_backend,
)
from shardflow.cli.wait_timers_option import wait_timers_option
from shardflow.errors import ConfigError, ShardflowError, WorkflowValidationError
from shardflow.model.loader import load_workflow
from shardflow.run.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    EXIT_USAGE,
    StorageError,
)
from shardflow.run.signals import Terminated, terminate_by_exception

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CODES_HELP = """\b
Exit codes:
  0    every instance completed, or waits for people or a webhook
  1    some instances failed or had invalid input
  2    usage, config, input or run-directory error (nothing ran)
  3    the run could not go on: its output, journal or tasks.db could
       not be written (disk full, file size limit, I/O error)
  75   timers stay parked, due later than --wait-timers: resume then
  130  interrupted (SIGINT), 143 terminated (SIGTERM): resume continues
  141  the output's reader went away (| head); the run stays resumable"""


class ShardflowGroup(SuggestingGroup):
    """Turns a :class:`ShardflowError` into one clear line and exit code 2 (3 for a
    :class:`StorageError`), no traceback unless ``--debug`` (before or after the subcommand);
    a mistyped command gets a "did you mean"."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            command_ready()  # from here a Ctrl-C is a KeyboardInterrupt, handled below
            return super().invoke(ctx)
        except ShardflowError as exc:
            if ctx.params.get("debug") or ctx.meta.get(DEBUG):
                traceback.print_exc()
            command_ctx = ctx.meta.get(COMMAND_CONTEXT)
            text = describe(exc, command_ctx) if isinstance(exc, ConfigError) else str(exc)
            click.echo(f"shardflow: error: {text}", err=True)
            sys.exit(exc.exit_code if isinstance(exc, StorageError) else EXIT_USAGE)
        except KeyboardInterrupt:  # Ctrl-C before a run started (loading, checking)
            click.echo("\nshardflow: interrupted; nothing ran", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except Terminated:
            click.echo("shardflow: terminated; nothing ran", err=True)
            sys.exit(EXIT_TERMINATED)




@click.group(cls=ShardflowGroup, epilog=EXIT_CODES_HELP, context_settings=CONTEXT_SETTINGS)
@option("--debug", is_flag=True, help="Show tracebacks for errors (also after the command).")
@click.option("-v", "--verbose", count=True, allow_from_autoenv=False, show_default=False,
              help="More messages (also after the command).")
@click.option("-q", "--quiet", count=True, allow_from_autoenv=False, show_default=False,
              help="Fewer messages (also after the command).")
@click.version_option(None, "-V", "--version", package_name="shardflow")
def cli(debug: bool, verbose: int, quiet: int) -> None:
    """shardflow: run workflows of async steps, by the million, across processes.

    \b
    Start with:
      shardflow run module:workflow -i input.jsonl -o results.jsonl
      shardflow runs show RUN --failed     which instances failed, and why
      shardflow tasks serve                the approvals inbox in the browser
    """




@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("target")
@app_dir_option
@option("-i", "--input", "input_path", metavar="PATH", default=None,
        help="JSONL (or .csv/.json) input; - for stdin.")
@option("--generate", type=click.IntRange(min=0), metavar="N", default=None,
        help='Instead of --input: N generated inputs {"id": i}.')
@option("-o", "--output", "output_path", metavar="PATH", default="-", help="JSONL results; - for stdout.")
@option("--format", "fmt", type=click.Choice(["jsonl", "csv", "json"]), default=None,
        show_default="by extension, else jsonl", help="Input format.")
@option("-w", "--workers", type=click.IntRange(min=1), metavar="N", default=None,
        show_default="CPU count", help="Worker processes.")
@option("--max-in-flight", type=click.IntRange(min=1), metavar="N", default=None, show_default="1000",
        help="Instances in flight per worker.")
@option("-c", "--config", "config_path", metavar="FILE", default=None,
        help="TOML config file ([run], [limits], [rate_limits]); flags win over it.")
@option("--ordered", is_flag=True, default=None, help="Write results in input order.")
@option("--limit", "limit_flags", metavar="NAME=SIZE", multiple=True,
        help="Concurrency limit (repeatable).")
@option("--rate-limit", "rate_flags", metavar="NAME=RATE", multiple=True,
        help="Rate limit such as api=100/s or 'api=600/m burst 20' (repeatable).")
@option("--hard-timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS", default=None,
        show_default="largest step timeout + 10 s", help="Kill a worker whose event loop is blocked this long.")
@option("--startup-timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
        default=None, show_default="60", help="How long a worker may take to load the workflow.")
@option("--summary-json", metavar="PATH", default=None, help="Write the run summary here as JSON.")
@option("--progress/--no-progress", default=True,
        help="Show progress on stderr: a bar on a terminal, else a line every --progress-every.")
@option("--progress-every", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
        default=10.0, help="Seconds between progress lines when stderr is not a terminal.")
@option("--run-dir", metavar="DIR", default=None, show_default=".shardflow/runs/<run-id>",
        help="Run directory (journal, tasks, summary).")
@option("--resume", "resume_dir", metavar="DIR", default=None,
        help="Continue the run in this directory instead of starting a new one.")
@option("--grace-seconds", type=click.FloatRange(min=0), metavar="SECONDS", default=10.0,
        help="On SIGINT/SIGTERM, how long in-flight instances may finish.")
@option("--no-journal", is_flag=True,
        help="No run directory or journal (no resume): only to measure the journal's cost.")
@option("--backend", type=click.Choice(["process", "ray"]), default=None, show_default="process",
        help="Run shards as worker processes or as Ray actors (pip install 'shardflow[ray]').")
@option("--address", metavar="ADDRESS", default=None, show_default="RAY_ADDRESS, else a local Ray",
        help="Ray cluster to join (auto, HOST:PORT).")
@option("--ray-working-dir", metavar="DIR", default=None, show_default=". for file.py targets",
        help="Directory shipped to the Ray nodes.")
@option("--ray-exclude", "ray_excludes", metavar="PATTERN", multiple=True,
        help="Leave files matching this .gitignore-style pattern out of the shipped directory "
             "(repeatable; run directories, inputs, outputs, .venv and .gitignore'd files "
             "always are).")
@option("--ray-env", "ray_env", metavar="NAME[=VALUE]", multiple=True,
        help="Set this environment variable on the Ray actors; NAME alone passes this "
             "shell's value (repeatable).")
@option("--ray-connect-timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
        default=None, show_default="30", help="How long joining the Ray cluster may take.")
@option("--ray-ship-shardflow", is_flag=True, default=None,
        help="Ship this shardflow to the Ray nodes instead of needing it installed there.")
@option("--events", "events_path", metavar="FILE", default=None,
        help="Append the instances' lifecycle events (workflow/step/human task) to FILE as "
             "JSONL. Instances then run interpreted: slower, so only when asked.")
@wait_timers_option
@metrics_options
@logging_options
def run(target: str, input_path: str | None, output_path: str, fmt: str | None,
        workers: int | None, max_in_flight: int | None, config_path: str | None,
        generate: int | None, ordered: bool | None, limit_flags: tuple[str, ...],
        rate_flags: tuple[str, ...], hard_timeout: float | None, startup_timeout: float | None,
        summary_json: str | None,
        progress: bool, progress_every: float, run_dir: str | None, resume_dir: str | None,
        grace_seconds: float, no_journal: bool, backend: str | None, address: str | None,
        ray_working_dir: str | None, ray_excludes: tuple[str, ...], ray_env: tuple[str, ...],
        ray_connect_timeout: float | None, ray_ship_shardflow: bool | None,
        events_path: str | None, wait_timers: float, metrics_port: int | None,
        metrics_host: str) -> None:
    """Run the workflow TARGET (module:attribute or file.py:attribute) over an input.

    \b
    Examples:
      shardflow run orders:workflow -i orders.jsonl -o results.jsonl
      shardflow run orders:workflow --generate 1000 -w 4 --limit db=10
      SHARDFLOW_WORKERS=2 shardflow run flows.py:workflow -i - < in.jsonl
    """
    terminate_by_exception()  # SIGTERM while loading the workflow: exit 143, no traceback
    from shardflow.cli.run_command import execute_resume, execute_run

    if resume_dir is not None:
        sys.exit(execute_resume(resume_dir, target=target, input_path=input_path, fmt=fmt,
                                generate=generate, summary_json=summary_json, progress=progress,
                                grace_seconds=grace_seconds, progress_every=progress_every,
                                metrics_port=metrics_port, metrics_host=metrics_host,
                                events_path=events_path, wait_timers=wait_timers))
    if (input_path is None) == (generate is None):
        raise click.UsageError("give exactly one of --input PATH and --generate N")
    config = run_config(config_path, limit_flags, rate_flags).merged(
        workers=workers, max_in_flight=max_in_flight, ordered=ordered, hard_timeout=hard_timeout,
        startup_timeout=startup_timeout)
    config = with_backend(config, backend, address=address, working_dir=ray_working_dir,
                          excludes=list(ray_excludes) or None, env=list(ray_env) or None,
                          connect_timeout=ray_connect_timeout, ship_shardflow=ray_ship_shardflow)
    definition = load_target(target)
    warn_unused_limits(definition, config)
    code = execute_run(target, definition, config, input_path=input_path, fmt=fmt,
                       generate=generate, output=output_path, summary_json=summary_json,
                       progress=progress, run_dir=run_dir, journal=not no_journal,
                       grace_seconds=grace_seconds, progress_every=progress_every,
                       metrics_port=metrics_port, metrics_host=metrics_host,
                       events_path=events_path, wait_timers=wait_timers)
    sys.exit(code)


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("run_dir")
@app_dir_option
@option("--summary-json", metavar="PATH", default=None, help="Write the run summary here as JSON.")
@option("--progress/--no-progress", default=True,
        help="Show progress on stderr: a bar on a terminal, else a line every --progress-every.")
@option("--progress-every", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
        default=10.0, help="Seconds between progress lines when stderr is not a terminal.")
@option("--grace-seconds", type=click.FloatRange(min=0), metavar="SECONDS", default=10.0,
        help="On SIGINT/SIGTERM, how long in-flight instances may finish.")
@option("--repair", is_flag=True,
        help="Journal damaged before its last line: keep every intact entry, drop the "
             "damaged ones and run their instances again.")
@option("--retry-failed", is_flag=True,
        help="Run the failed instances again as new attempts; their new results "
             "replace the failed ones (every id still appears once).")
@option("--events", "events_path", metavar="FILE", default=None,
        help="Append the instances' lifecycle events (workflow/step/human task) to FILE as "
             "JSONL. Instances then run interpreted: slower, so only when asked.")
@wait_timers_option
@logging_options
def resume(run_dir: str, summary_json: str | None, progress: bool, progress_every: float,
           grace_seconds: float, repair: bool, retry_failed: bool,
           events_path: str | None, wait_timers: float) -> None:
    """Continue the run in RUN_DIR after a crash or an interrupt, and continue its waiting
    instances whose human tasks are all completed and whose timers are due. Only one process works on a run at a
    time: a second one exits 2 naming the process that holds it."""
    terminate_by_exception()
    from shardflow.cli.run_command import execute_resume

    sys.exit(execute_resume(run_dir, summary_json=summary_json, progress=progress,
                            grace_seconds=grace_seconds, repair=repair,
                            retry_failed=retry_failed, progress_every=progress_every,
                            events_path=events_path, wait_timers=wait_timers))


from shardflow.cli.runs_command import runs  # noqa: E402  (registers the groups below)
from shardflow.cli.tasks_command import tasks  # noqa: E402

cli.add_command(tasks)
cli.add_command(runs)

from shardflow.cli.consume_command import consume  # noqa: E402  (shardflow[redis]: issue 21)
from shardflow.cli.enqueue_command import enqueue  # noqa: E402

cli.add_command(consume)
cli.add_command(enqueue)


@cli.command()
@click.argument("target")
@app_dir_option
@settings_options("TOML config file whose [limits] and [rate_limits] the run would use.",
                  "Concurrency limit the run would get (repeatable).",
                  "Rate limit the run would get (repeatable).")
@logging_options
def validate(target: str, config_path: str | None, limit_flags: tuple[str, ...],
             rate_flags: tuple[str, ...]) -> None:
    """List every problem of the workflow TARGET that 'shardflow run' would refuse (exit 1
    if there are any), the limits and rate limits its steps need a size for included: give
    them as 'run' would get them (--limit, --rate-limit, --config)."""
    definition = load_workflow(target)
    config = run_config(config_path, limit_flags, rate_flags)
    problems = definition.validate() or limit_problems(definition, config)
    if not problems:
        click.echo(f"{definition.name} {definition.version}: valid "
                   f"({plural(len(definition.steps), 'node')}, {plural(len(definition.edges), 'edge')})")
        warn_unused_limits(definition, config)
        return
    click.echo(str(WorkflowValidationError(definition.name, problems)), err=True)
    sys.exit(EXIT_FAILED)


@cli.command()
@click.argument("target")
@app_dir_option
@option("--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid",
        envvar="SHARDFLOW_GRAPH_FORMAT", help="Graph language.")
@logging_options
def graph(target: str, fmt: str) -> None:
    """Print the graph of the workflow TARGET as Mermaid or DOT."""
    definition = load_workflow(target)
    click.echo(definition.to_mermaid() if fmt == "mermaid" else definition.to_dot(), nl=False)


from shardflow.cli.bench_command import bench  # noqa: E402

cli.add_command(bench)


def main() -> None:
    cli(prog_name="shardflow")


if __name__ == "__main__":
    main()
