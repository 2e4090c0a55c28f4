"""The crash-recovery policy, without processes: who re-runs, who becomes a suspect, who fails."""

from __future__ import annotations

import orjson

from shardflow.batch.crash_policy import Culprit, decide
from shardflow.batch.jobs import Job
from shardflow.engine.results import parse_line
from shardflow.errors import HARD_TIMEOUT, WORKER_LOST


def _jobs(count: int) -> list[Job]:
    return [Job(seq, f"id-{seq}", orjson.dumps({"id": seq})) for seq in range(count)]


def test_unexplained_crash_makes_every_lost_job_a_suspect() -> None:
    lost = _jobs(3)
    decision = decide(lost, None, max_crashes=3)
    assert [j.seq for j in decision.suspects] == [0, 1, 2]
    assert all(j.crashes == 1 and j.attempt == 2 for j in decision.suspects)
    assert not decision.requeue and not decision.failed and decision.hard_timeouts == 0
    assert all(j.crashes == 0 for j in lost), "the policy does not change its inputs"


def test_a_job_that_crashed_max_crashes_workers_fails_as_worker_lost() -> None:
    job = Job(7, 7, b'{"id": 7, "x": 1}', attempt=3, crashes=2)
    decision = decide([job], None, max_crashes=3)
    assert not decision.suspects
    [failure] = decision.failed
    assert failure.error_type == WORKER_LOST and "3 times" in failure.message
    record = parse_line(failure.result_line())
    assert (record["id"], record["status"], record["attempts"]) == (7, "failed", 3)
    assert record["context"] == {"id": 7, "x": 1}
    assert record["error"]["type"] == WORKER_LOST


def test_the_watchdogs_culprit_is_retried_while_its_step_has_retries() -> None:
    culprit, neighbour = _jobs(2)
    decision = decide([culprit, neighbour], Culprit(seq=0, step="slow", retries=1),
                      max_crashes=3, hard_timeout=5.0)
    assert [j.seq for j in decision.requeue] == [0, 1]
    assert decision.requeue[0].hard_timeouts == 1
    assert decision.requeue[1].crashes == 0, "an innocent neighbour counts no crash"
    assert not decision.suspects and not decision.failed
    assert decision.hard_timeouts == 1


def test_the_culprit_without_retries_fails_with_hard_timeout_naming_its_step() -> None:
    culprit, neighbour = _jobs(2)
    decision = decide([culprit, neighbour], Culprit(seq=0, step="slow"), max_crashes=3,
                      hard_timeout=5.0)
    [failure] = decision.failed
    assert failure.job.seq == 0 and failure.error_type == HARD_TIMEOUT
    assert failure.step == "slow" and "5 s" in failure.message
    assert parse_line(failure.result_line())["error"]["step"] == "slow"
    assert [j.seq for j in decision.requeue] == [1]


def test_culprit_from_a_watchdog_report() -> None:
    assert Culprit.from_report({"seq": 4, "step": "s", "retries": 2}) == Culprit(4, "s", 2)
    assert Culprit.from_report({"step": "s"}) is None
    assert Culprit.from_report(None) is None
    assert Culprit.from_report({"seq": 1, "step": None, "retries": "x"}) == Culprit(1, None, 0)


def test_with_alone_from_2_a_first_loss_runs_again_as_usual_and_a_second_runs_alone() -> None:
    first, again = Job(0, 0, b'{"id": 0}'), Job(1, 1, b'{"id": 1}', attempt=2, crashes=1)
    decision = decide([first, again], None, max_crashes=3, alone_from=2)
    assert [(j.seq, j.crashes, j.attempt) for j in decision.requeue] == [(0, 1, 2)]
    assert [(j.seq, j.crashes, j.attempt) for j in decision.suspects] == [(1, 2, 3)]
    assert not decision.failed
