"""``shardflow runs``: list the run directories (under ``.shardflow/runs`` and the
``--run-dir`` runs started here), show one and its failures, prune old ones."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import orjson
from click.core import ParameterSource

from shardflow._text import plural
from shardflow.cli.conventions import SuggestingGroup, logging_options, sub_option
from shardflow.run.failures import failed_records, find_run
from shardflow.run.housekeeping import RunInfo, describe_run, list_runs, parse_age, prune_runs
from shardflow.run.rundir import DEFAULT_BASE, known_run_dirs


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _started(info: RunInfo) -> str:
    return datetime.fromtimestamp(info.started_at).strftime("%Y-%m-%d %H:%M") if info.started_at else "-"


def _age(info: RunInfo, now: float) -> str:
    """``45s``, ``12m``, ``3h``, ``9d``: how long ago the run started."""
    if not info.started_at:
        return "-"
    seconds = max(now - info.started_at, 0.0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size:.0f}{unit}"
    return f"{seconds:.0f}s"


def _counts(info: RunInfo) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(info.counts.items())) or "-"


def _workflow(info: RunInfo) -> str:
    return info.target or "?"


def _output(info: RunInfo) -> str:
    if info.record is None:
        return "?"
    return info.output or "stdout"


def _as_json(info: RunInfo) -> dict[str, Any]:
    return {"run_id": info.run_id, "path": str(info.path), "workflow": info.target,
            "started_at": info.started_at, "status": info.status, "counts": info.counts,
            "output": info.output, "size": info.size}


def _default_base(ctx: click.Context) -> bool:
    return ctx.get_parameter_source("base") == ParameterSource.DEFAULT


@click.group(cls=SuggestingGroup)
def runs() -> None:
    """Run directories: list them, show one (and its failures), prune old ones."""


@runs.command("list")
@sub_option("--base", default=str(DEFAULT_BASE), show_default=True, help="Where runs live.")
@sub_option("--json", "as_json", is_flag=True, help="Print JSON, one run per line.")
@logging_options
def list_command(base: str, as_json: bool) -> None:
    """Every run under BASE and every --run-dir run started here, newest first: id,
    workflow, status, counts, output, age."""
    extra = known_run_dirs() if _default_base(click.get_current_context()) else []
    found = list_runs(Path(base), extra)
    if as_json:
        for info in found:
            click.echo(orjson.dumps(_as_json(info)).decode())
        return
    if not found:
        click.echo(f"no runs under {base}")
        return
    now = time.time()
    rows = [(info.run_id, _workflow(info), info.status, _counts(info), _output(info),
             _age(info, now), _size(info.size)) for info in found]
    header = ("RUN", "WORKFLOW", "STATUS", "COUNTS", "OUTPUT", "AGE", "SIZE")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@runs.command("show")
@click.argument("run")
@sub_option("--failed", is_flag=True, help="List every failed or invalid instance with its message.")
@sub_option("--json", "as_json", is_flag=True, help="Print JSON (with --failed: one instance per line).")
@sub_option("--base", default=str(DEFAULT_BASE), show_default=True, help="Where runs live.")
@logging_options
def show_command(run: str, failed: bool, as_json: bool, base: str) -> None:
    """The run RUN (a run directory or a run id): workflow, status, input, output, counts and
    its most common failures; with --failed, each failed instance: id, step, error, message.

    \b
    Examples:
      shardflow runs show .shardflow/runs/20261206-103016-808b3e
      shardflow runs show 20261206-103016-808b3e --failed
      shardflow runs show RUN --failed --json | jq -r .id
    """
    path = find_run(run, Path(base), known_run_dirs())
    if failed:
        for record in failed_records(path):
            if as_json:
                click.echo(orjson.dumps(record).decode())
            else:
                where = f" ({record['source']} line {record['line']})" if "line" in record else ""
                click.echo(f"{orjson.dumps(record['id']).decode()}\t{record['step']}\t"
                           f"{record['type']}\t{record['message']}{where}")
        return
    info = describe_run(path)
    examples = _examples(path)
    if as_json:
        click.echo(orjson.dumps({**_as_json(info), "input": info.record.input if info.record else None,
                                 "failure_examples": examples}).decode())
        return
    lines = [f"run {info.run_id} ({path})",
             f"  workflow  {_workflow(info)}",
             f"  status    {info.status}, started {_started(info)} ({_age(info, time.time())} ago)"]
    if info.record is not None:
        source = info.record.input
        shown = source.get("path") or (f"{source['generate']:,} generated" if "generate" in source
                                       else "stdin")
        lines.append(f"  input     {shown}")
        lines.append(f"  output    {_output(info)}")
    lines.append(f"  counts    {_counts(info)}")
    if examples:
        lines.append("  most common failures (the last session's):")
        for entry in examples:
            ids = ", ".join(orjson.dumps(i).decode() for i in entry["ids"])
            lines.append(f"    {entry['step']} {entry['type']} x{entry['count']}: "
                         f"{entry['message'] or '(no message)'} (ids {ids})")
    if info.counts.get("failed") or info.counts.get("invalid_input"):
        lines.append(f"  list them all: shardflow runs show {path} --failed")
    click.echo("\n".join(lines))


def _examples(path: Path) -> list[dict[str, Any]]:
    """The summary's ``failure_examples`` (the run's last session), if it has a summary."""
    try:
        summary = orjson.loads((path / "summary.json").read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return []
    examples = summary.get("failure_examples") if isinstance(summary, dict) else None
    return examples if isinstance(examples, list) else []


@runs.command("prune")
@sub_option("--older-than", required=True, help="Remove runs started before this age (7d, 12h).")
@sub_option("--keep", type=click.IntRange(min=0), default=0, show_default=True, help="Always keep the N newest.")
@sub_option("--base", default=str(DEFAULT_BASE), show_default=True, help="Where runs live.")
@logging_options
def prune_command(older_than: str, keep: int, base: str) -> None:
    """Remove old run directories under BASE (never one a live process holds; a --run-dir
    run elsewhere is yours to remove)."""
    removed = prune_runs(Path(base), parse_age(older_than), keep)
    for info in removed:
        click.echo(f"removed {info.path} ({info.status}, {_size(info.size)})")
    click.echo(f"{plural(len(removed), 'run')} removed")
