"""ShardRunner, the seam between the engine and a batch backend: raw lines in, result lines
and snapshots out, one answer per job whatever happens to the instance."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import orjson
import pytest

from engine.helpers import step, within
from shardflow import BaseHumanStep, Edge, WorkflowContext, WorkflowDefinition
from shardflow.batch import protocol
from shardflow.engine.results import Status, parse_line
from shardflow.engine.rows import JobKind
from shardflow.engine.shard import ShardJob, ShardOutput, ShardRunner


async def _double(ctx: WorkflowContext) -> Any:
    """Returns twice ``value``: the steps running it opt in to storing it (``store_result``)."""
    await asyncio.sleep(0)
    return ctx.get("value", 0) * 2


def _raises(exc: BaseException, who: int = 3) -> Any:
    async def body(ctx: WorkflowContext) -> Any:
        await asyncio.sleep(0)
        if ctx.get("id") == who:
            raise exc
        return "ok"

    return body


def _fork(branch: Any, **attrs: Any) -> WorkflowDefinition:
    """start -> (double | branch) -> join: ``branch`` runs in a task of its own."""
    return WorkflowDefinition(
        name="fork",
        steps={"start": step("start", _double, store_result=True), "double": step("double", _double, store_result=True),
               "branch": step("branch", branch, **attrs), "join": step("join", _double, store_result=True)},
        edges=[Edge("start", "double"), Edge("start", "branch"), Edge("double", "join"),
               Edge("branch", "join")],
        initial_step="start", terminal_steps={"join"},
    )


def _jobs(count: int) -> list[ShardJob]:
    return [ShardJob(i, i, 1, JobKind.NEW, orjson.dumps({"id": i, "value": i})) for i in range(count)]


def _answers(out: ShardOutput) -> dict[int, dict[str, Any]]:
    assert [row[3] for row in out.rows] == [len(line) for line in out.lines]
    answers = {row[0]: parse_line(line) for row, line in zip(out.rows, out.lines, strict=True)}
    assert len(answers) == len(out.rows)
    for row, line in zip(out.rows, out.lines, strict=True):
        assert Status(row[1]).label == parse_line(line)["status"]
    return answers


def test_job_kinds_are_the_wire_codes() -> None:
    assert (protocol.NEW, protocol.RESUME) == (JobKind.NEW, JobKind.RESUME) == (0, 1)


def test_run_batch_answers_every_job_with_a_result_line(run: Any) -> None:
    shard = ShardRunner(_fork(_double))
    out = run(within(shard.run_batch(_jobs(20))))
    answers = _answers(out)
    assert sorted(answers) == list(range(20))
    for seq, record in answers.items():
        assert record["id"] == seq  # the id as the input spelled it (an int here)
        assert record["status"] == "completed"
        assert record["context"]["double"] == record["context"]["join"] == 2 * seq
        assert record["attempts"] == 1
    stats = shard.step_stats()
    assert set(stats) == {"start", "double", "branch", "join"}
    count, total_ms, max_ms, wait_ms, retries = stats["join"]
    assert count == 20 and 0 <= max_ms <= total_ms and wait_ms == retries == 0


@pytest.mark.parametrize("raised", [KeyboardInterrupt("k"), SystemExit(3), asyncio.CancelledError(),
                                    GeneratorExit(), RuntimeError("bug")])
def test_whatever_a_branch_raises_fails_its_instance_alone(run: Any, raised: BaseException) -> None:
    shard = ShardRunner(_fork(_raises(raised)))
    answers = _answers(run(within(shard.run_batch(_jobs(8)))))
    failed = answers.pop(3)
    assert failed["status"] == "failed"
    assert failed["error"]["step"] == "branch"
    assert failed["error"]["type"] == type(raised).__name__
    assert all(r["status"] == "completed" for r in answers.values())


def test_a_step_raising_in_a_single_path_instance_is_answered(run: Any) -> None:
    single = WorkflowDefinition(name="one", steps={"only": step("only", _raises(SystemExit(1), 0))},
                                edges=[], initial_step="only", terminal_steps={"only"})
    answers = _answers(run(within(ShardRunner(single).run_batch(_jobs(2)))))
    assert answers[0]["error"]["type"] == "SystemExit"
    assert answers[1]["status"] == "completed"


def test_cancelling_the_host_still_cancels(run: Any) -> None:
    """A real cancellation is not an instance failure: nothing is answered, and every
    instance has unwound (its ``finally`` ran) when ``run_batch`` raises."""
    started: list[int] = []
    unwound: list[int] = []
    all_started = asyncio.Event()

    async def forever(ctx: WorkflowContext) -> Any:
        started.append(ctx.get("id"))
        if len(started) == 3:
            all_started.set()
        try:
            await asyncio.Event().wait()
        finally:
            unwound.append(ctx.get("id"))

    shard = ShardRunner(_fork(forever))

    async def main() -> None:
        batch = asyncio.ensure_future(shard.run_batch(_jobs(3)))
        await within(all_started.wait())
        batch.cancel()
        with pytest.raises(asyncio.CancelledError):
            await batch
        assert sorted(unwound) == [0, 1, 2]

    run(main())


def test_a_line_that_is_not_json_fails_naming_the_input(run: Any) -> None:
    jobs = [ShardJob(0, "a", 1, JobKind.NEW, b"{not json"), *_jobs(2)[1:]]
    answers = _answers(run(within(ShardRunner(_fork(_double)).run_batch(jobs))))
    assert answers[0]["status"] == "failed"
    assert answers[0]["error"]["step"] == "<input>"
    assert answers[0]["id"] == "a"
    assert answers[1]["status"] == "completed"


class Approve(BaseHumanStep):
    name = "approve"
    form_schema = {"type": "object"}


class BadSchema(BaseHumanStep):
    name = "approve"

    def __init__(self) -> None:
        self.form_schema: dict[str, Any] = {"type": "object"}


def _approval(human: BaseHumanStep) -> WorkflowDefinition:
    return WorkflowDefinition(
        name="approval", steps={"start": step("start", _double, store_result=True), "approve": human,
                                "done": step("done", _double, store_result=True)},
        edges=[Edge("start", "approve"), Edge("approve", "done")],
        initial_step="start", terminal_steps={"done"},
    )


def test_push_api_emits_a_snapshot_before_its_waiting_result_and_resumes_from_it(run: Any) -> None:
    outputs: list[ShardOutput] = []
    shard = ShardRunner(_approval(Approve()), on_output=outputs.append, flush_at=2)

    async def main() -> None:
        jobs = _jobs(5)
        shard.submit([(*job[:4], len(job.line)) for job in jobs], [job.line for job in jobs])
        await within(shard.drain())
        assert shard.in_flight == 0

    run(main())
    assert len(outputs) >= 3  # flush_at=2: batches of at most two
    seen_snapshots: set[int] = set()
    snapshots: dict[int, bytes] = {}
    for out in outputs:
        assert len(out.rows) <= 2
        seen_snapshots.update(seq for seq, _ in out.parked_rows)
        snapshots.update((seq, blob) for (seq, _), blob in zip(out.parked_rows, out.snapshots, strict=True))
        for row in out.rows:  # every waiting result comes with (or after) its snapshot
            assert row[1] == Status.WAITING and row[0] in seen_snapshots
    assert sorted(snapshots) == list(range(5))

    parked = orjson.loads(snapshots[4])
    (task,) = parked["tasks"]
    assert task["node"] == "approve"
    resume = ShardJob(4, 4, 1, JobKind.RESUME,
                      orjson.dumps({"state": parked["state"], "data": {task["id"]: {"ok": True}}}))
    answers = _answers(run(within(ShardRunner(_approval(Approve())).run_batch([resume]))))
    assert answers[4]["status"] == "completed"
    assert answers[4]["context"]["approve"] == {"ok": True}
    assert answers[4]["context"]["done"] == 8


def test_an_instance_that_cannot_be_parked_fails_naming_the_human_step(run: Any) -> None:
    human = BadSchema()
    runner = ShardRunner(_approval(human))  # checks the definition: the schema is JSON here
    human.form_schema["default"] = {1, 2}  # a set, after the check: only parking can see it
    answers = _answers(run(within(runner.run_batch(_jobs(2)))))
    for record in answers.values():
        assert record["status"] == "failed"
        assert record["error"]["step"] == "approve"
        assert record["error"]["type"] == "TypeError"
        assert record["context"]["start"] == 2 * record["id"]


def test_a_damaged_snapshot_fails_its_instance(run: Any) -> None:
    job = ShardJob(0, "x", 2, JobKind.RESUME, orjson.dumps({"state": {"format": 99}, "data": {}}))
    answers = _answers(run(within(ShardRunner(_approval(Approve())).run_batch([job]))))
    assert answers[0]["status"] == "failed"
    assert answers[0]["error"]["step"] == "<snapshot>"
    assert answers[0]["attempts"] == 2


def test_blocking_job_names_the_step_blocking_the_loop_from_another_thread(run: Any) -> None:
    """What the worker's watchdog thread asks while a step blocks the loop."""
    seen: list[Any] = []
    holder: dict[str, ShardRunner] = {}

    async def blocks(ctx: WorkflowContext) -> Any:
        if ctx.get("id") == 2:
            loop = asyncio.get_running_loop()
            probe = threading.Thread(target=lambda: seen.append(holder["shard"].blocking_job(loop)))
            probe.start()
            probe.join()  # the loop is blocked (in this step) while the thread looks
        await asyncio.sleep(0)

    async def main() -> ShardRunner:
        shard = holder["shard"] = ShardRunner(_fork(blocks, retries=2), watched=True)
        await within(shard.run_batch(_jobs(4)))
        return shard

    shard = run(main())
    assert seen == [{"seq": 2, "step": "branch", "retries": 2}]
    idle = asyncio.new_event_loop()
    try:
        assert shard.blocking_job(idle) is None  # no step running there
    finally:
        idle.close()


def _blocker(seen: list[Any], holder: dict[str, ShardRunner], who: int) -> Any:
    """A step body that, for instance ``who``, asks blocking_job from another thread while
    it keeps the loop blocked."""
    async def blocks(ctx: WorkflowContext) -> Any:
        await asyncio.sleep(0)
        if ctx.get("id") == who:
            loop = asyncio.get_running_loop()
            probe = threading.Thread(target=lambda: seen.append(holder["shard"].blocking_job(loop)))
            probe.start()
            probe.join()
        return 1

    return blocks


def _in_a_group(body: Any) -> WorkflowDefinition:
    from shardflow import ParallelGroup

    group = ParallelGroup(step("left", _double, store_result=True), step("right", body), name="pair")
    return WorkflowDefinition(name="grouped", steps={"start": step("start", _double, store_result=True),
                                                     "pair": group},
                              edges=[Edge("start", "pair")], initial_step="start")


def _conditional(body: Any) -> WorkflowDefinition:
    return WorkflowDefinition(
        name="cond", steps={"start": step("start", _double, store_result=True), "branch": step("branch", body),
                            "other": step("other", _double, store_result=True)},
        edges=[Edge("start", "branch", condition=lambda ctx: True),
               Edge("start", "other", condition=lambda ctx: True)],
        initial_step="start")


@pytest.mark.parametrize(("shape", "where"), [
    ("fork", "branch"),  # a plain step in a spawned task of a compiled schedule
    ("first", "start"),  # the instance's own task, compiled
    ("group", "pair/right"),  # a group's branch (run_step under the interpreter)
    ("conditional", "branch"),  # an interpreted path
])
def test_blocking_job_names_the_step_wherever_it_runs(run: Any, shape: str, where: str) -> None:
    seen: list[Any] = []
    holder: dict[str, ShardRunner] = {}
    body = _blocker(seen, holder, who=3)
    definition = {"fork": lambda: _fork(body), "group": lambda: _in_a_group(body),
                  "conditional": lambda: _conditional(body),
                  "first": lambda: WorkflowDefinition(name="one", steps={"start": step("start", body)},
                                                      edges=[], initial_step="start")}[shape]()

    async def main() -> None:
        holder["shard"] = ShardRunner(definition, watched=True)
        await within(holder["shard"].run_batch(_jobs(5)))

    run(main())
    assert seen == [{"seq": 3, "step": where, "retries": 0}]


def test_blocking_job_blames_nobody_between_steps(run: Any) -> None:
    """A condition that blocks the loop is no step's fault: nothing is named."""
    seen: list[Any] = []
    holder: dict[str, ShardRunner] = {}
    probe_once = _blocker(seen, holder, who=0)

    def condition(ctx: WorkflowContext) -> bool:
        if not seen:
            loop = asyncio.get_running_loop()
            probe = threading.Thread(target=lambda: seen.append(holder["shard"].blocking_job(loop)))
            probe.start()
            probe.join()
        return True

    definition = WorkflowDefinition(
        name="cond", steps={"start": step("start", _double, store_result=True), "next": step("next", probe_once)},
        edges=[Edge("start", "next", condition=condition)], initial_step="start")

    async def main() -> None:
        holder["shard"] = ShardRunner(definition, watched=True)
        await within(holder["shard"].run_batch(_jobs(1)))

    run(main())
    assert seen[0] is None  # asked from the condition
    assert seen[1] == {"seq": 0, "step": "next", "retries": 0}  # and then from the step


def test_blocking_job_tells_apart_jobs_that_share_an_id_spelling(run: Any) -> None:
    """Ids 1 and "1" are two instances that run as the same engine id: the job blocking the
    loop is named by its own frame, not by the id, so the innocent one is never blamed."""
    seen: list[Any] = []
    holder: dict[str, ShardRunner] = {}

    async def blocks(ctx: WorkflowContext) -> Any:
        if ctx.get("id") == "1":
            loop = asyncio.get_running_loop()
            probe = threading.Thread(target=lambda: seen.append(holder["shard"].blocking_job(loop)))
            probe.start()
            probe.join()
        await asyncio.sleep(0)

    async def main() -> None:
        shard = holder["shard"] = ShardRunner(_fork(blocks), watched=True)
        jobs = [ShardJob(0, 1, 1, JobKind.NEW, orjson.dumps({"id": 1})),
                ShardJob(1, "1", 1, JobKind.NEW, orjson.dumps({"id": "1"}))]
        await within(shard.run_batch(jobs))

    run(main())
    assert seen == [{"seq": 1, "step": "branch", "retries": 0}]


def test_the_in_process_engine_draws_the_same_boundary(run: Any) -> None:
    """A step's SystemExit fails its instance in LocalExecutionEngine too (escaping a branch
    task, it would stop the caller's event loop)."""
    from engine.helpers import engine_for

    engine = engine_for(_fork(_raises(SystemExit("step"), who=0)))
    instance = run(within(engine.start_workflow("fork", {"id": 0})))
    assert instance.status == "failed"
    assert (instance.error.step, instance.error.type) == ("branch", "SystemExit")


class Legal(BaseHumanStep):
    name = "legal"


class Finance(BaseHumanStep):
    name = "finance"


def test_complete_task_resumes_a_node_when_its_last_task_is_done(run: Any) -> None:
    """Interpreter.to_snapshot / from_snapshot / complete_task: the seam a host resumes by."""
    from shardflow import FakeClock, ParallelGroup, TaskNotFoundError
    from shardflow.engine.interpreter import Interpreter

    definition = WorkflowDefinition(
        name="two", steps={"both": ParallelGroup(Legal(), Finance())}, edges=[],
        initial_step="both", terminal_steps={"both"})
    tasks: list[Any] = []
    first = Interpreter(definition.plan, "i-1", FakeClock(), on_task=tasks.append)
    run(first.run(WorkflowContext({"id": 1}, instance_id="i-1")))
    state = orjson.loads(orjson.dumps(first.to_snapshot()))  # through JSON, as hosts store it
    legal, finance = tasks

    again = Interpreter.from_snapshot(definition.plan, state, FakeClock())
    assert again.instance_id == "i-1" and again.waits_on(legal.id)
    with pytest.raises(TaskNotFoundError):
        again.complete_task("no-such-task", {})
    assert again.complete_task(legal.id, {"ok": 1}) is None  # finance is still open
    assert again.complete_task(finance.id, {"ok": 2}) == "both"
    assert again.ready_nodes() == ["both"]
    run(again.resume("both"))
    assert not again.parked
    assert again.final_context(None).data == {"id": 1, "legal": {"ok": 1}, "finance": {"ok": 2}}


def _conflict(ctx: WorkflowContext) -> Any:
    async def body(ctx: WorkflowContext) -> Any:
        ctx.set("same", ctx.get("id"))
    return body


def _shapes() -> dict[str, WorkflowDefinition]:
    """One workflow per way a new instance ends (the shard runner's fused path must answer
    each exactly as ``InstanceRunner.run`` + the general encoder does)."""
    approve_or_fail = WorkflowDefinition(
        name="open_then_fail",
        steps={"start": step("start", _double, store_result=True), "approve": Approve(),
               "boom": step("boom", _raises(ValueError("no"), who=1))},
        edges=[Edge("start", "approve"), Edge("start", "boom")],
        initial_step="start", terminal_steps={"approve", "boom"},
    )
    same_key = WorkflowDefinition(  # both branches write "same" differently: the join fails
        name="conflict",
        steps={"start": step("start", _double, store_result=True),
               "a": step("a", lambda ctx: _set_async(ctx, "same", 1)),
               "b": step("b", lambda ctx: _set_async(ctx, "same", ctx.get("id"))),
               "join": step("join", _double, store_result=True)},
        edges=[Edge("start", "a"), Edge("start", "b"), Edge("a", "join"), Edge("b", "join")],
        initial_step="start", terminal_steps={"join"},
    )
    return {"fork": _fork(_double), "branch_fails": _fork(_raises(ValueError("v"), who=1)),
            "approval": _approval(Approve()), "open_then_fail": approve_or_fail,
            "conflict": same_key}


async def _set_async(ctx: WorkflowContext, key: str, value: Any) -> None:
    ctx.set(key, value)


def _without_task_ids(value: Any) -> Any:
    """``value`` (a result record or a snapshot) with its random task ids and times
    replaced by their order of appearance."""
    record = dict(value)
    text = orjson.dumps(record).decode()
    for i, task in enumerate(record.get("tasks") or []):
        text = text.replace(task["id"], f"task-{i}").replace(repr(task["created_at"]), "0")
    return orjson.loads(text)


def _comparable(line: bytes) -> dict[str, Any]:
    record = parse_line(line)
    record.pop("started_at")
    record.pop("duration_ms")
    if record["error"] is not None:
        record["error"].pop("traceback")
    return _without_task_ids(record)  # type: ignore[no-any-return]


@pytest.mark.parametrize("shape", sorted(_shapes()))
def test_new_instances_are_answered_as_the_instance_runner_would(run: Any, shape: str) -> None:
    from shardflow.engine.answers import encode
    from shardflow.engine.runner import InstanceRunner
    from shardflow.engine.stepstats import StepStats

    definition = _shapes()[shape]
    jobs = _jobs(3)

    async def both() -> tuple[ShardOutput, list[Any]]:
        fused = await ShardRunner(definition).run_batch(jobs)
        runner = InstanceRunner(definition, stats=StepStats())
        general = [encode(job.instance_id, job.attempt, await runner.run(
            str(job.instance_id), orjson.loads(job.line), job=job.seq)) for job in jobs]
        return fused, general

    fused, general = run(within(both()))
    by_seq = dict(zip((row[0] for row in fused.rows), fused.lines, strict=True))
    expected = {job.seq: answer for job, answer in zip(jobs, general, strict=True)}
    for seq, (status, _, line, _, _) in expected.items():
        assert _comparable(by_seq[seq]) == _comparable(line)
        assert parse_line(by_seq[seq])["status"] == status.label
    parked = {row[0]: blob for row, blob in zip(fused.parked_rows, fused.snapshots, strict=True)}
    assert set(parked) == {seq for seq, answer in expected.items() if answer[3] is not None}
    for seq, blob in parked.items():
        mine, theirs = orjson.loads(blob), orjson.loads(expected[seq][3])
        assert _without_task_ids(mine) == _without_task_ids(theirs)


@pytest.mark.parametrize("started", [False, True])
def test_cancel_ends_every_pushed_job_whether_or_not_it_had_started(run: Any, started: bool) -> None:
    """The host going away (``cancel``, then ``drain``) must not hang on jobs cancelled before
    they ran, which never get to take themselves out of the runner."""
    entered = asyncio.Event()

    async def blocks(ctx: WorkflowContext) -> Any:
        entered.set()
        await asyncio.Event().wait()

    async def main() -> tuple[int, int, int]:
        outputs: list[ShardOutput] = []
        shard = ShardRunner(_fork(blocks), on_output=outputs.append)
        shard.submit([(*job[:4], len(job.line)) for job in _jobs(10)],
                     [job.line for job in _jobs(10)])
        before = shard.in_flight
        if started:
            await entered.wait()
        shard.cancel()
        await shard.drain()
        return before, shard.in_flight, sum(len(out.rows) for out in outputs)

    before, after, answered = run(within(main()))
    assert (before, after, answered) == (10, 0, 0)


def test_pushed_jobs_leave_in_flight_as_they_answer(run: Any) -> None:
    """Every pushed job is in flight until its answer is out, then not: the two always add up
    to what was submitted, a held job included."""
    release = asyncio.Event()

    async def holds_two(ctx: WorkflowContext) -> Any:
        if ctx.get("id") == 2:
            await release.wait()
        return 1

    async def main() -> tuple[list[tuple[int, int]], int]:
        seen: list[tuple[int, int]] = []
        answered = 0

        def on_output(out: ShardOutput) -> None:
            nonlocal answered
            answered += len(out.rows)
            seen.append((answered, shard.in_flight))
            if answered == 4:
                release.set()

        shard = ShardRunner(_fork(holds_two), on_output=on_output)
        shard.submit([(*job[:4], len(job.line)) for job in _jobs(5)],
                     [job.line for job in _jobs(5)])
        await shard.drain()
        return seen, shard.in_flight

    seen, after = run(within(main()))
    assert all(answered + in_flight == 5 for answered, in_flight in seen), seen
    assert (4, 1) in seen and seen[-1] == (5, 0) and after == 0


def test_a_decoded_input_nested_too_deep_fails_naming_the_input_and_its_key(run: Any) -> None:
    """orjson decodes nothing the data contract refuses except depth: a worker checks only
    inputs holding containers, and still refuses one nested past the limit."""
    from shardflow.jsonvalue import MAX_DEPTH

    deep: Any = 1
    for _ in range(MAX_DEPTH + 5):
        deep = [deep]
    lines = [orjson.dumps({"id": 0, "deep": deep}), orjson.dumps({"id": 1, "nested": {"a": [1]}}),
             orjson.dumps({"id": 2, "x": 1.5, "s": "é", "n": None, "b": True, "i": -(1 << 63)})]
    jobs = [ShardJob(i, i, 1, JobKind.NEW, line) for i, line in enumerate(lines)]
    answers = _answers(run(within(ShardRunner(_fork(_double)).run_batch(jobs))))
    assert answers[0]["status"] == "failed"
    assert answers[0]["error"]["step"] == "<input>"
    assert answers[0]["error"]["type"] == "ContextValueError"
    assert "deep" in answers[0]["error"]["message"]
    assert answers[1]["status"] == answers[2]["status"] == "completed"
    assert answers[2]["context"]["s"] == "é" and answers[2]["context"]["i"] == -(1 << 63)
