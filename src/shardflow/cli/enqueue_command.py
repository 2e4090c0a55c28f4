"""``shardflow enqueue``: put the records of a JSONL file (or stdin) on a Redis stream, one
message each, for ``shardflow consume``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import IO

import click
import orjson

from shardflow.cli.conventions import logging_options, option
from shardflow.cli.metrics_option import require_redis_extra
from shardflow.errors import ConfigError
from shardflow.run.errors import EXIT_FAILED


@click.command()
@option("--redis", "redis_url", metavar="URL", required=True, help="Redis to write to.")
@option("--stream", metavar="NAME", required=True, help="Stream to add the messages to.")
@option("-i", "--input", "input_path", metavar="PATH", required=True, help="JSONL records; - for stdin.")
@option("--maxlen", type=click.IntRange(min=1), metavar="N", default=None,
        help="Trim the stream to about N messages (oldest first).")
@logging_options
def enqueue(redis_url: str, stream: str, input_path: str, maxlen: int | None) -> None:
    """Add one message per JSONL record to a stream (exit 1 if a line was not a JSON object)."""
    require_redis_extra()
    import redis.asyncio as aioredis

    from shardflow._loop import run
    from shardflow.queue.producer import enqueue as add

    bad: list[str] = []
    stream_in = _open(input_path)
    name = "<stdin>" if input_path == "-" else input_path

    async def main() -> int:
        client = aioredis.Redis.from_url(redis_url)
        try:
            return len(await add(client, stream, _objects(stream_in, name, bad), maxlen=maxlen))
        finally:
            await client.aclose()

    count = run(main())
    for problem in bad:
        click.echo(f"shardflow: error: {problem}", err=True)
    click.echo(f"shardflow: {count} messages added to {stream}"
               + (f"; {len(bad)} lines were not enqueued" if bad else ""), err=True)
    sys.exit(EXIT_FAILED if bad else 0)


def _open(path: str) -> IO[bytes]:
    if path == "-":
        return sys.stdin.buffer
    try:
        return open(path, "rb")  # closed by _objects, which reads it to its end
    except OSError as exc:
        raise ConfigError("input", f"cannot read {path}: {exc.strerror}") from None


def _objects(stream: IO[bytes], name: str, bad: list[str]) -> Iterator[bytes]:
    """The lines holding a JSON object, as they are; the others are reported in ``bad``."""
    with stream:
        for number, line in enumerate(stream, 1):
            line = line.strip()
            if not line:
                continue
            try:
                ok = isinstance(orjson.loads(line), dict)
            except orjson.JSONDecodeError as exc:
                bad.append(f"{name} line {number}: not JSON ({exc})")
                continue
            if ok:
                yield line
            else:
                bad.append(f"{name} line {number}: expected a JSON object")
