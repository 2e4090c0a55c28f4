"""RunStats: what the summary line reports, fed one frame of result rows at a time."""

from __future__ import annotations

import random

from shardflow.batch.stats import RunStats
from shardflow.engine.results import Status


def test_a_frame_of_rows_is_counted_by_status_and_timed_within_two_per_cent() -> None:
    rng = random.Random(7)
    durations = [rng.lognormvariate(1.0, 1.5) for _ in range(5000)]
    codes = [rng.choice([Status.COMPLETED, Status.FAILED, Status.WAITING]) for _ in durations]
    stats = RunStats()
    rows = [[i, int(code), ms, 10] for i, (code, ms) in enumerate(zip(codes, durations, strict=True))]
    for start in range(0, len(rows), 256):
        stats.add_batch(rows[start:start + 256])
    stats.add_batch([[9999, int(Status.INVALID_INPUT), 0.0, 10]])  # pre-answered: not timed
    assert stats.counts == {"completed": codes.count(Status.COMPLETED),
                            "failed": codes.count(Status.FAILED),
                            "waiting": codes.count(Status.WAITING), "invalid_input": 1}
    assert stats.latency.count == len(durations)
    assert stats.latency.max == max(durations)
    ordered = sorted(durations)
    for q in (50, 95, 99):
        exact = ordered[int(q / 100 * len(ordered)) - 1]
        assert abs(stats.latency.percentile(q) - exact) <= 0.021 * exact


def test_rows_one_by_one_and_in_frames_give_the_same_summary() -> None:
    rows = [[i, i % 2, 0.0005 * (i + 1), 3] for i in range(600)]
    framed, single = RunStats(), RunStats()
    framed.add_batch(rows)
    for row in rows:
        single.add(row[1], row[2])
    assert framed.counts == single.counts
    assert framed.latency.buckets == single.latency.buckets
    assert framed.latency.max == single.latency.max
