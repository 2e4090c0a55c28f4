"""``shardflow runs``: list and prune the run directories under ``.shardflow/runs``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click
import orjson

from shardflow.cli.conventions import sub_option
from shardflow.run.housekeeping import RunInfo, list_runs, parse_age, prune_runs
from shardflow.run.rundir import DEFAULT_BASE


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _started(info: RunInfo) -> str:
    return datetime.fromtimestamp(info.started_at).strftime("%Y-%m-%d %H:%M") if info.started_at else "-"


@click.group()
def runs() -> None:
    """Run directories: list them, prune old ones."""


@runs.command("list")
@sub_option("--base", default=str(DEFAULT_BASE), show_default=True, help="Where runs live.")
@sub_option("--json", "as_json", is_flag=True, help="Print JSON, one run per line.")
def list_command(base: str, as_json: bool) -> None:
    """Every run under BASE, newest first: id, started, status, counts, size."""
    found = list_runs(Path(base))
    if as_json:
        for info in found:
            click.echo(orjson.dumps({
                "run_id": info.run_id, "path": str(info.path), "started_at": info.started_at,
                "status": info.status, "counts": info.counts, "size": info.size}).decode())
        return
    if not found:
        click.echo(f"no runs under {base}")
        return
    click.echo(f"{'RUN':24}  {'STARTED':16}  {'STATUS':10}  {'SIZE':>9}  COUNTS")
    for info in found:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(info.counts.items())) or "-"
        click.echo(f"{info.run_id:24}  {_started(info):16}  {info.status:10}  "
                   f"{_size(info.size):>9}  {counts}")


@runs.command("prune")
@sub_option("--older-than", required=True, help="Remove runs started before this age (7d, 12h).")
@sub_option("--keep", type=click.IntRange(min=0), default=0, show_default=True, help="Always keep the N newest.")
@sub_option("--base", default=str(DEFAULT_BASE), show_default=True, help="Where runs live.")
def prune_command(older_than: str, keep: int, base: str) -> None:
    """Remove old run directories (never one a live process holds)."""
    removed = prune_runs(Path(base), parse_age(older_than), keep)
    for info in removed:
        click.echo(f"removed {info.path} ({info.status}, {_size(info.size)})")
    click.echo(f"{len(removed)} run(s) removed")
