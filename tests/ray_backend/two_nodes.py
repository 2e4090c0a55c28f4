"""A two-node Ray cluster on this machine, as a user with a real cluster has one.

``ray start --head`` plus a second ``ray start --address`` (what ``ray.cluster_utils.Cluster``
does), each in a process group of its own, on loopback, with its own temporary directory
and free ports (other Rays may run on the machine), token authentication on, and a fast
health check so a node that dies is declared dead in seconds (not a loaded machine's
slow answers, though). Killing a node is
killing its process group; teardown ends exactly the groups started here.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

TOKEN = "shardflow-test-token-0123456789abcdef0123456789abcdef"
"""The cluster's auth token (a driver gets it in RAY_AUTH_TOKEN, as docs/OPERATIONS.md says)."""
RAY = str(Path(sys.executable).parent / "ray")
START_SECONDS = 90.0
"""A node starts in 5-10 s; the wide margin is for a loaded machine."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Node:
    process: subprocess.Popen[bytes]
    temp_dir: Path

    def kill(self) -> None:
        """The node is lost: its raylet, object store and workers (actors) die at once."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        if self.process.stdout is not None:  # open until now: ``ray start`` may still write
            self.process.stdout.close()


@dataclass
class TwoNodes:
    address: str
    base: Path
    nodes: list[Node] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        """A driver's environment: the token only (not RAY_AUTH_MODE), as documented."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        return {**env, "RAY_AUTH_TOKEN": TOKEN, "HOME": str(self.base), **extra}

    def stop(self) -> None:
        """End every process of both nodes (``ray start --block`` takes ~30 s to stop
        gracefully; nothing of a test cluster needs to survive)."""
        for node in reversed(self.nodes):
            node.kill()
        shutil.rmtree(self.base, ignore_errors=True)


def _node_env(base: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    return {**env, "HOME": str(base), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": TOKEN,
            "RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "4",
            "RAY_USAGE_STATS_ENABLED": "0", **extra}


def _start(args: list[str], temp_dir: Path, env: dict[str, str]) -> Node:
    """Start one node; a start that does not come up in time (a port taken meanwhile by
    another process of this busy machine) is killed and tried once more, with new ports."""
    said = b""
    for _ in range(2):
        node, output = _start_once(args, temp_dir, env)
        if node is not None:
            return node
        said += output
    raise RuntimeError(f"ray start failed twice:\n{said.decode(errors='replace')}")


def _start_once(args: list[str], temp_dir: Path, env: dict[str, str]) -> tuple[Node | None, bytes]:
    ports = ("--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port",
             "--dashboard-agent-grpc-port", "--metrics-export-port", "--runtime-env-agent-port")
    process = subprocess.Popen(
        [RAY, "start", "--block", "--node-ip-address=127.0.0.1", "--num-cpus=1",
         f"--temp-dir={temp_dir}", "--disable-usage-stats", *args,
         *(f"{flag}={free_port()}" for flag in ports)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    node = Node(process, temp_dir)
    assert process.stdout is not None
    said = b""
    deadline = time.monotonic() + START_SECONDS
    try:
        while (left := deadline - time.monotonic()) > 0:
            if not select.select([process.stdout], [], [], left)[0]:
                break  # no word from ``ray start`` in time
            chunk = os.read(process.stdout.fileno(), 65536)
            said += chunk
            if b"Ray runtime started" in said:  # ``ray start`` says when the node is up
                return node, said
            if not chunk:
                break
    except BaseException:
        node.kill()
        raise
    node.kill()
    return None, said


def start_two_nodes(**second_node_env: str) -> TwoNodes:
    """Head and second node, 1 CPU each (no spare CPU: a lost node's actor cannot move)."""
    base = Path(tempfile.mkdtemp(prefix="sfray-"))  # short: Ray's socket paths must fit
    port = free_port()
    cluster = TwoNodes(f"127.0.0.1:{port}", base)
    try:
        cluster.nodes.append(_start(
            ["--head", f"--port={port}", "--include-dashboard=false"], base / "h",
            _node_env(base)))
        cluster.nodes.append(_start(
            [f"--address={cluster.address}"], base / "w", _node_env(base, **second_node_env)))
    except BaseException:
        cluster.stop()
        raise
    return cluster
