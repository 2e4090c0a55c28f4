"""The Ray backend on a two-node cluster with no spare CPU (issue 24): a node lost mid-run.

One cluster for the module (``ray start --head`` plus a second ``ray start --address``, token
authentication, 1 CPU each: see ``two_nodes``); its one test kills the second node, so it
stays the module's only test that needs both nodes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

pytest.importorskip("ray", reason="the Ray backend's tests need Ray: pip install 'shardflow[ray]'")

from ray_backend.helpers import results_of, started_or_exited
from ray_backend.two_nodes import TwoNodes, start_two_nodes

SPREAD = f"{Path(__file__).parent / 'flows.py'}:spread"
WORK = f"{Path(__file__).parent / 'flows.py'}:work"


@pytest.fixture(scope="module")
def cluster() -> Iterator[TwoNodes]:
    nodes = start_two_nodes(SHARDFLOW_VICTIM="1")
    try:
        yield nodes
    finally:
        nodes.stop()


def _inputs(path: Path, count: int, tmp_path: Path, sleep: float) -> Path:
    path.write_bytes(b"".join(orjson.dumps({"id": i, "sleep": sleep, "dir": str(tmp_path),
                                            "effects": str(tmp_path / "effects.log")}) + b"\n"
                              for i in range(count)))
    return path


@pytest.mark.timeout(300)
def test_a_node_lost_mid_run_is_not_fatal_and_a_smaller_cluster_still_runs(
        cluster: TwoNodes, tmp_path: Path) -> None:
    inputs = _inputs(tmp_path / "in.jsonl", 4000, tmp_path, 0.05)
    out = tmp_path / "out.jsonl"
    os.mkfifo(tmp_path / "held.fifo")
    driver = subprocess.Popen(
        [sys.executable, "-m", "shardflow", "run", SPREAD, "--input", str(inputs),
         "--backend", "ray", "--address", cluster.address, "--workers", "2",
         "--max-in-flight", "20", "--output", str(out), "--run-dir", str(tmp_path / "run"),
         "--no-progress"],
        cwd=tmp_path, env=cluster.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        held, said = started_or_exited(tmp_path / "held.fifo", driver)
        assert held, said.decode()  # an instance is in flight on the second node
        cluster.nodes[1].kill()
        _, rest = driver.communicate(timeout=240)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.communicate()
    stderr = (said + rest).decode()
    assert driver.returncode in (0, 1), stderr  # not 2: the run went on without the node
    results = results_of(out)
    assert sorted(results) == list(range(4000))
    assert {r["status"] for r in results.values()} == {"completed"}, stderr
    assert re.search(r"a shard actor was lost \(its node died\); its \d+ instances in flight "
                     r"run again; running on 1 of 2 while a replacement starts", stderr), stderr
    # Ray's own lines, if any, come through shardflow's logging (the summary's are indented)
    assert all(line.startswith(("shardflow: ", "  ")) for line in stderr.splitlines()), stderr

    # the cluster now has one CPU: a run recorded with two shards resumes on the one it offers
    smaller = tmp_path / "smaller"
    smaller.mkdir()
    os.mkfifo(smaller / "held.fifo")
    inputs = smaller / "in.jsonl"
    inputs.write_bytes(b"".join(orjson.dumps({"id": i, "hold": 5, "dir": str(smaller)}) + b"\n"
                                for i in range(200)))
    first = subprocess.Popen(
        [sys.executable, "-m", "shardflow", "run", WORK, "--input", str(inputs), "--backend",
         "ray", "--address", cluster.address, "--workers", "2", "--max-in-flight", "10",
         "--output", str(smaller / "out.jsonl"), "--run-dir", str(smaller / "run"),
         "--no-progress", "--startup-timeout", "5"],
        cwd=smaller, env=cluster.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        held, said = started_or_exited(smaller / "held.fifo", first)
        assert held, said.decode()
    finally:
        first.kill()  # the driver dies mid-run; its actor goes with it
        first.communicate()
    resumed = subprocess.run(
        [sys.executable, "-m", "shardflow", "resume", str(smaller / "run"), "--no-progress"],
        cwd=smaller, env=cluster.env(), capture_output=True, text=True, timeout=120, check=False)
    assert resumed.returncode == 0, resumed.stderr  # not 2 after the 5 s start-up timeout
    assert sorted(results_of(smaller / "out.jsonl")) == list(range(200))


def test_a_wrong_token_is_refused_at_once_in_one_line(cluster: TwoNodes, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "shardflow", "run", "shardflow.examples.notify:workflow",
         "--generate", "2", "--backend", "ray", "--address", cluster.address, "--output",
         str(tmp_path / "out.jsonl"), "--no-journal", "--no-progress"],
        env=cluster.env(RAY_AUTH_TOKEN="not-the-token-0123456789abcdef0123456789ab"),
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"shardflow: error: --address: cannot join the Ray cluster at "
        f"{cluster.address}: it refused this driver's credentials (give the cluster's token "
        "in RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH)"]
