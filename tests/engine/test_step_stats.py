"""StepStats: durations appended per step, folded into rows (engine/stepstats.py)."""

from __future__ import annotations

import asyncio

from shardflow.engine.shard import ShardJob, ShardRunner
from shardflow.engine.stepstats import StepStats
from shardflow.examples import notify


def test_rows_count_total_longest_wait_and_retries() -> None:
    stats = StepStats()
    stats.count("a", 0.5)
    stats.waited("b", 2.0)  # a step first seen waiting for its limit
    stats.count("a", 1.5)
    stats.retried("a")
    stats.count("b", 0.25)
    assert stats.rows() == {"a": [2, 2.0, 1.5, 0.0, 1], "b": [1, 0.25, 0.25, 2.0, 0]}
    stats.count("a", 0.1)  # counting goes on after a report, and the longest stays
    assert stats.rows()["a"] == [3, 2.1, 1.5, 0.0, 1]


def test_a_shard_folds_every_batch_so_durations_do_not_pile_up() -> None:
    async def main() -> ShardRunner:
        shard = ShardRunner(notify.workflow)
        for first in range(0, 60, 20):
            await shard.run_batch(ShardJob(i, i, 1, 0, b'{"id": %d}' % i)
                                  for i in range(first, first + 20))
            assert not any(shard._steps.durations.values())
        return shard

    shard = asyncio.run(main())
    stats = shard.step_stats()
    assert {path: row[0] for path, row in stats.items()} == {
        "process": 60, "send_email": 60, "send_slack": 60, "send_sms": 60, "complete": 60}
