"""``shardflow consume``: be one consumer of a Redis stream's group until stopped (or, with
``--burst``, until the group has nothing left), with optional ``/metrics`` and ``/healthz``.

SIGTERM and SIGINT stop it gracefully: no more reading, in-flight messages finish and are
acknowledged within ``--grace-seconds``, exit 0.
"""

from __future__ import annotations

import asyncio
import signal
import sys

import click

from shardflow.cli.conventions import logging_options, option
from shardflow.cli.metrics_option import metrics_options, require_redis_extra, serving_metrics
from shardflow.cli.run_settings import app_dir_option, run_config, settings_options
from shardflow.run.signals import terminate_by_exception

CONSUME_EXIT_CODES = """\b
Exit codes:
  0    stopped (SIGTERM/SIGINT, after in-flight messages were acknowledged
       or the grace period ended), or --burst found nothing left to do
  2    usage or config error, a workflow with human steps, or workers that
       cannot start (nothing was acknowledged that did not finish)"""


@click.command(epilog=CONSUME_EXIT_CODES)
@click.argument("target")
@app_dir_option
@option("--redis", "redis_url", metavar="URL", required=True, help="Redis to read from (redis://host:port/db).")
@option("--stream", metavar="NAME", required=True, help="Stream of messages (field 'data': one JSON object).")
@option("--group", metavar="NAME", default="shardflow", help="Consumer group shared by every consumer.")
@option("--consumer", "consumer_name", metavar="NAME", default=None, show_default="host-pid",
        help="This consumer's name in the group.")
@option("--results", metavar="STREAM", default=None, show_default="NAME:results",
        help="Stream the results go to (fields id, record).")
@option("--dead-letter", metavar="STREAM", default=None, show_default="NAME:dead",
        help="Stream of messages delivered more than --max-deliveries times.")
@option("--max-deliveries", type=click.IntRange(min=1), metavar="N", default=5,
        help="Deliveries a message may have before it is dead-lettered.")
@option("--claim-idle", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS", default=30.0,
        help="Take over messages another consumer left unacknowledged this long.")
@option("--burst", is_flag=True, help="Exit 0 once the group has no new and no pending message.")
@option("-w", "--workers", type=click.IntRange(min=1), metavar="N", default=None,
        show_default="CPU count", help="Worker processes of this consumer.")
@option("--max-in-flight", type=click.IntRange(min=1), metavar="N", default=None, show_default="1000",
        help="Instances in flight per worker.")
@settings_options("TOML config file ([run], [limits], [rate_limits]); flags win over it.",
                  "Concurrency limit shared by every consumer of the group (repeatable).",
                  "Rate limit shared by every consumer of the group (repeatable).")
@option("--grace-seconds", type=click.FloatRange(min=0), metavar="SECONDS", default=10.0,
        help="On SIGINT/SIGTERM, how long in-flight instances may finish.")
@option("--events-stream", metavar="STREAM", default=None,
        help="Add each instance's lifecycle events to this stream (fields id, event, record), "
             "written with its result.")
@option("--events-maxlen", type=click.IntRange(min=1), metavar="N", default=None,
        show_default="no cap", help="Cap the events stream near N entries (XADD MAXLEN ~).")
@option("--run-dir", metavar="DIR", default=None, show_default="a temporary directory",
        help="Where the workers' watchdog reports go.")
@metrics_options
@logging_options
def consume(target: str, redis_url: str, stream: str, group: str, consumer_name: str | None,
            results: str | None, dead_letter: str | None, max_deliveries: int, claim_idle: float,
            burst: bool, workers: int | None, max_in_flight: int | None, config_path: str | None,
            limit_flags: tuple[str, ...], rate_flags: tuple[str, ...], grace_seconds: float,
            events_stream: str | None, events_maxlen: int | None, metrics_port: int | None,
            metrics_host: str, run_dir: str | None) -> None:
    """Run the workflow TARGET on the messages of a Redis stream, as one consumer of a group.

    \b
    Examples:
      shardflow consume orders:workflow --redis redis://localhost --stream orders
      shardflow consume flows.py:workflow --redis redis://q:6379/0 --stream jobs --burst -w 2
    """
    terminate_by_exception()
    require_redis_extra()
    from pathlib import Path

    from shardflow.queue.consumer import Consumer
    from shardflow.queue.settings import ConsumerSettings, default_consumer_name

    config = run_config(config_path, limit_flags, rate_flags).merged(
        workers=workers, max_in_flight=max_in_flight)
    settings = ConsumerSettings(redis_url, stream, group, consumer_name or default_consumer_name(),
                                results, dead_letter, max_deliveries, claim_idle, burst,
                                grace_seconds, events_stream=events_stream,
                                events_maxlen=events_maxlen)
    consumer = Consumer(target, settings, config, scratch_dir=Path(run_dir) if run_dir else None)
    consumer.check()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, consumer.stop)
        outcome = await consumer.run()
        click.echo(f"shardflow: consumer {settings.consumer}: {outcome.results} results, "
                   f"{outcome.dead_letters} dead letters, {outcome.redeliveries} redelivered",
                   err=True)

    from shardflow._loop import run

    with serving_metrics(metrics_port, metrics_host, consumer.metrics, lambda: consumer.healthy):
        run(main())
    sys.exit(0)
