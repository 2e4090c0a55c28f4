"""Run N notify instances through ``ShardRunner.submit`` in this process, fed as a batch worker
feeds it (batches of 256 raw lines, 1,000 in flight, watched, the tuned collector), for
``icount``: the worker's instructions per instance without the processes and the socket.

Run: ``python scripts/icount.py -- .venv/bin/python scripts/shard_instances.py {n}``
"""

from __future__ import annotations

import argparse
import asyncio

import orjson
import uvloop

from shardflow.batch import protocol as p
from shardflow.engine.shard import ShardOutput, ShardRunner
from shardflow.engine.tuning import tune_gc
from shardflow.examples import notify


async def _feed(total: int, in_flight: int) -> int:
    done = asyncio.Event()
    answered = 0
    sent = 0
    lines = [orjson.dumps({"id": i}) for i in range(total)]

    def on_output(out: ShardOutput) -> None:
        nonlocal answered
        p.batch_frame(p.RESULTS, out.rows, out.lines)  # what the worker sends
        answered += len(out.rows)
        if answered >= total:
            done.set()
        else:
            feed()

    shard = ShardRunner(notify.workflow, on_output=on_output, watched=True)

    def feed() -> None:
        nonlocal sent
        while sent - answered < in_flight and sent < total:
            count = min(256, total - sent)
            shard.submit([(s, s, 1, 0, len(lines[s])) for s in range(sent, sent + count)],
                         lines[sent:sent + count])
            sent += count

    feed()
    await done.wait()
    return answered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("instances", type=int)
    parser.add_argument("--in-flight", type=int, default=1000)
    args = parser.parse_args()
    tune_gc()
    answered = uvloop.new_event_loop().run_until_complete(_feed(args.instances, args.in_flight))
    assert answered == args.instances, answered


if __name__ == "__main__":
    main()
