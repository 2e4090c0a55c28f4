"""``shardflow bench``: throughput over several rounds, of a built-in workload (optionally
against its hand-written baseline) or of the user's own workflow (``bench TARGET``)."""

from __future__ import annotations

from pathlib import Path

import click
import orjson

from shardflow.batch.config import RunConfig
from shardflow.cli.conventions import logging_options, option
from shardflow.cli.limits_check import warn_unused_limits
from shardflow.cli.run_settings import (
    app_dir_option,
    load_target,
    run_config,
    settings_options,
    with_backend,
)
from shardflow.errors import ConfigError
from shardflow.model.plan import check_limits


@click.command()
@click.argument("target", required=False)
@app_dir_option
@option("--workload", type=click.Choice(["forkjoin", "forkjoin-io", "linear10", "limit50"]),
        default="forkjoin", envvar="SHARDFLOW_BENCH_WORKLOAD", help="Built-in workload (without TARGET).")
@option("-n", "--instances", type=click.IntRange(min=1), default=100_000,
        envvar="SHARDFLOW_BENCH_INSTANCES", help='Instances to run (generated {"id": i} for a TARGET).')
@option("-i", "--input", "input_path", metavar="PATH", default=None, envvar="SHARDFLOW_BENCH_INPUT",
        help="With TARGET: run this input file each round instead of generated inputs.")
@option("-w", "--workers", type=click.IntRange(min=1), default=None, show_default="CPU count",
        help="Worker processes.")
@option("--max-in-flight", type=click.IntRange(min=1), default=1000, help="Instances in flight per worker.")
@option("--rounds", type=click.IntRange(min=1), default=3, envvar="SHARDFLOW_BENCH_ROUNDS",
        help="Rounds to run; the report gives the median and the lowest and highest.")
@option("--baseline", is_flag=True, envvar="SHARDFLOW_BENCH_BASELINE",
        help="Each round, also run the hand-written baseline and compare (built-in workloads).")
@settings_options("With TARGET: TOML config ([limits], [rate_limits]) as 'run' takes it.",
                  "With TARGET: concurrency limit (repeatable).",
                  "With TARGET: rate limit (repeatable).")
@option("--json", "as_json", is_flag=True, envvar="SHARDFLOW_BENCH_JSON", help="Print the figures as JSON.")
@option("--backend", type=click.Choice(["process", "ray"]), default="process",
        envvar="SHARDFLOW_BENCH_BACKEND", help="With ray, --baseline also runs the process backend.")
@logging_options
def bench(target: str | None, workload: str, instances: int, input_path: str | None,
          workers: int | None, max_in_flight: int, rounds: int, baseline: bool,
          config_path: str | None, limit_flags: tuple[str, ...], rate_flags: tuple[str, ...],
          as_json: bool, backend: str) -> None:
    """Measure throughput over several rounds (median, lowest, highest): a built-in workload,
    optionally against a hand-written baseline, or your own workflow TARGET.

    \b
    Examples:
      shardflow bench --workload forkjoin -n 200000 -w 2 --baseline
      shardflow bench orders:workflow -n 20000 --limit db=10
      shardflow bench orders:workflow -i sample.jsonl --rounds 5
    """
    from shardflow.bench import rounds as bench_rounds
    from shardflow.run.start import items_of

    with_backend(RunConfig(), backend)  # Ray missing: exit 2, naming the extra
    if target is None:
        if input_path or config_path or limit_flags or rate_flags:
            raise click.UsageError("--input, --config, --limit and --rate-limit need a TARGET "
                                   "(the built-in workloads set their own)")
        report = bench_rounds.workload_rounds(workload, instances, workers or RunConfig().workers,
                                              max_in_flight, rounds=rounds, baseline=baseline,
                                              backend=backend)
    else:
        if baseline:
            raise click.UsageError("--baseline compares the built-in workloads with their "
                                   "hand-written versions; your workflow has none")
        config = with_backend(run_config(config_path, limit_flags, rate_flags), backend)
        config = config.merged(workers=workers, max_in_flight=max_in_flight)
        definition = load_target(target)
        check_limits(definition.plan, config.limits, config.rate_limits)  # what run refuses
        warn_unused_limits(definition, config)
        if input_path is not None and not Path(input_path).is_file():
            raise ConfigError("input", f"input file {input_path!r} does not exist")
        report = bench_rounds.target_rounds(
            target, lambda: items_of(input_path, None, None if input_path else instances), config,
            rounds=rounds, source=input_path or "generated inputs")
    if as_json:
        click.echo(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(report["text"])
