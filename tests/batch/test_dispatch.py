"""Even dispatch: the least-loaded worker first, so every batch larger than the number of
workers uses every worker; large runs keep full batches."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from shardflow.batch.dispatch import fill, share
from shardflow.batch.jobs import Feed, Job
from support.e2e import read_results

FLOWS = Path(__file__).parent / "flows_core.py"


@dataclass
class _Worker:
    inflight: dict[int, Job] = field(default_factory=dict)
    exclusive: bool = False
    sends: list[int] = field(default_factory=list)


def _send(worker: _Worker, jobs: list[Job]) -> None:
    worker.sends.append(len(jobs))
    worker.inflight.update((job.seq, job) for job in jobs)


def _feed(count: int) -> Feed:
    return Feed(Job(seq, seq, b"{}") for seq in range(count))


def test_share_raises_the_lowest_loads_first() -> None:
    assert share([0, 0], [250, 250], 300) == [150, 150]
    assert share([100, 0], [250, 250], 300) == [100, 200]
    assert share([5, 0, 0], [10, 10, 10], 4) == [0, 2, 2]
    assert share([0, 0], [3, 3], 7) == [3, 3]
    assert share([0, 0, 0], [1, 5, 5], 9) == [1, 4, 4]


def test_a_small_run_is_split_evenly() -> None:
    workers = [_Worker(), _Worker()]
    fill(_feed(300), workers, limit=1000, batch=250, send=_send)
    assert [len(w.inflight) for w in workers] == [150, 150]


def test_a_large_run_sends_full_batches_up_to_the_limit() -> None:
    workers = [_Worker(), _Worker()]
    feed = _feed(100_000)
    fill(feed, workers, limit=1000, batch=250, send=_send)
    assert [w.sends for w in workers] == [[250] * 4, [250] * 4]
    # A few results back: no crumbs while the source is open; a full batch's worth: refill.
    for seq in list(workers[0].inflight)[:100]:
        del workers[0].inflight[seq]
    fill(feed, workers, limit=1000, batch=250, send=_send)
    assert workers[0].sends == [250] * 4
    for seq in list(workers[0].inflight)[:150]:
        del workers[0].inflight[seq]
    fill(feed, workers, limit=1000, batch=250, send=_send)
    assert workers[0].sends == [250] * 5 and len(workers[0].inflight) == 1000


def test_a_worker_running_a_suspect_alone_gets_nothing_more() -> None:
    workers = [_Worker(exclusive=True), _Worker()]
    fill(_feed(10), workers, limit=1000, batch=250, send=_send)
    assert [len(w.inflight) for w in workers] == [0, 10]


def test_300_cpu_bound_instances_use_both_workers(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "shardflow", "run", f"{FLOWS}:cpu_bound", "--generate", "300",
         "--workers", "2", "--output", str(out), "--no-journal", "--no-progress"],
        capture_output=True, text=True, timeout=120, env=os.environ.copy(), check=False)
    assert proc.returncode == 0, proc.stderr
    per_worker = Counter(r["context"]["burn"]["pid"] for r in read_results(out))
    assert len(per_worker) == 2, per_worker
    assert min(per_worker.values()) >= 120, f"split {per_worker} is worse than 60/40"
