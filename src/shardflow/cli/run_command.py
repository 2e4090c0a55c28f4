"""``shardflow run``: wire the input, the coordinator, the sink, progress and the summary."""

from __future__ import annotations

import sys

import orjson
import uvloop

from shardflow.batch.config import RunConfig
from shardflow.batch.coordinator import Coordinator, summary_dict
from shardflow.batch.sinks import JsonlSink
from shardflow.batch.sources import generated, open_source
from shardflow.cli.progress import Progress
from shardflow.limits.local import check_limits
from shardflow.model.definition import WorkflowDefinition


def execute_run(target: str, definition: WorkflowDefinition, config: RunConfig, *,
                input_path: str | None, fmt: str | None, generate: int | None, output: str,
                summary_json: str | None, progress: bool) -> int:
    """Run the batch; return the exit code (0 all completed, 1 some failed or invalid)."""
    check_limits(definition.plan, config.limits, config.rate_limits)
    if generate is not None:
        items = generated(generate)
        source_name = "<generated>"
    else:
        assert input_path is not None
        items = open_source(input_path, fmt)
        source_name = input_path
    sink = JsonlSink(output)
    display = Progress(generate, enabled=progress)
    coordinator = Coordinator(target, config, sink, source_name=source_name, progress=display)
    try:
        outcome = uvloop.run(coordinator.run(items))
    finally:
        display.close()
        sink.close()
    stats = outcome.stats
    sys.stderr.write(outcome.render() + "\n")
    if summary_json:
        with open(summary_json, "wb") as fh:
            fh.write(orjson.dumps(summary_dict(outcome), option=orjson.OPT_INDENT_2))
    bad = stats.counts.get("failed", 0) + stats.counts.get("invalid_input", 0)
    return 1 if bad else 0
