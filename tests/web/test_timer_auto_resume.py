"""``shardflow tasks serve --auto-resume`` continues parked timers when they are due, through
the same ``shardflow resume`` the inbox's button starts (which fires what is due and leaves
the rest parked): a real run, a real server process, a timer a few seconds long, and a FIFO
the instance meets once its timer fired."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from support.e2e import by_id, read_results, write_jsonl
from web.inbox_helpers import Server, env, http_get, needs_web

pytestmark = needs_web

GATED = str(Path(__file__).parent.parent / "batch" / "kind_flows.py") + ":gated_timer"
SHORT = 12
"""Seconds of the timer the server must fire: long enough for the run to end first (it parks
the timer and exits 75 at once; a loaded 2-core CI box takes a few seconds to start it),
short enough for a test."""
DAY = 86400


def _met(fifo: Path) -> threading.Event:
    """Set once someone opens ``fifo`` for writing (a daemon thread holds the read end)."""
    met = threading.Event()

    def wait() -> None:
        os.close(os.open(fifo, os.O_RDONLY))
        met.set()

    threading.Thread(target=wait, daemon=True).start()
    return met


def test_auto_resume_continues_a_timer_when_it_is_due_and_leaves_later_ones_parked(
        tmp_path: Path) -> None:
    fifo = tmp_path / "woke"
    os.mkfifo(fifo)
    inp = write_jsonl(tmp_path / "in.jsonl", [{"id": 0, "delay": SHORT, "notify": str(fifo)},
                                               {"id": 1, "delay": DAY}])
    output, run_dir = tmp_path / "out.jsonl", tmp_path / "run"
    ran = subprocess.run([sys.executable, "-m", "shardflow", "run", GATED, "-i", str(inp),
                          "--run-dir", str(run_dir), "--output", str(output), "--no-progress",
                          "--workers", "1", "--wait-timers", "0"],
                         cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=60)
    assert ran.returncode == 75, ran.stderr  # both timers parked, the run ended
    met = _met(fifo)
    server = Server([run_dir], "--no-token", "--auto-resume", cwd=tmp_path)
    try:
        assert met.wait(timeout=90), f"the due timer was not continued: {server.lines}"
        status, state = http_get(f"{server.base}/api/runs/run?wait=60")
        assert status == 200
    finally:
        code = server.stop()
        if not met.is_set():  # let the reader thread go
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert code == -signal.SIGTERM, server.lines  # a clean stop (test_serve_command)
    assert not [line for line in server.lines if "Traceback" in line]
    resume = state["resume"]
    assert (resume["status"], resume["exit_code"]) == ("succeeded", 75), resume  # one still parked
    assert (state["open_timers"], state["waiting_instances"]) == (1, 1)
    final = by_id(read_results(output))  # each id once: 0's waiting line replaced
    assert final[0]["status"] == "completed" and final[0]["context"]["woke"] is True
    assert final[1]["status"] == "waiting"
    listed = subprocess.run([sys.executable, "-m", "shardflow", "tasks", "list", str(run_dir),
                             "--kind", "timer", "--all", "--json"],
                            env=env(), capture_output=True, text=True, timeout=60, check=True)
    assert listed.stdout.count('"completed_by":"<timer>"') == 1  # fired once, by the resume


def test_the_alarm_asks_once_per_due_timer_and_again_only_after_a_pause(tmp_path: Path) -> None:
    """A resume that could not fire the timer (the run's lock is held, say) is not started
    again at every look."""
    from shardflow.web.resumer import Resumer
    from shardflow.web.runs import RunTable
    from shardflow.web.timer_alarm import RETRY_SECONDS, TimerAlarm
    from web.inbox_helpers import made_run

    made_run(tmp_path / "run", [("1", "review", None, None)])
    clock = [50.0]
    alarm = TimerAlarm(RunTable([tmp_path / "run"]), Resumer(), now=lambda: clock[0])
    assert not alarm._should_ask("run", 100.0)  # not due yet
    clock[0] = 100.0
    assert alarm._should_ask("run", 100.0)
    clock[0] = 101.0
    assert not alarm._should_ask("run", 100.0)  # still parked: wait before asking again
    clock[0] = 100.0 + RETRY_SECONDS
    assert alarm._should_ask("run", 100.0)
    clock[0] = 140.0
    assert alarm._should_ask("run", 135.0)  # the next timer came due: at once
