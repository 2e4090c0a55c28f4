"""Joining a Ray cluster fails fast and plainly (issue 24): an address nobody answers, a
signal while connecting, a ``ray://`` address without Ray Client, a bad ``--ray-env``.

No cluster is started here: each case ends before (or instead of) joining one."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="the Ray backend's tests need Ray: pip install 'shardflow[ray]'")

from ray_backend.two_nodes import free_port


def _run(tmp_path: Path, *flags: str) -> list[str]:
    return [sys.executable, "-m", "shardflow", "run", "shardflow.examples.notify:workflow",
            "--generate", "10", "--backend", "ray", "--output", str(tmp_path / "out.jsonl"),
            "--run-dir", str(tmp_path / "run"), "--no-progress", *flags]


def _only_shardflow_lines(stderr: str) -> list[str]:
    """The error lines of ``stderr``, which holds shardflow's own lines only (a notice of
    the run directory may come first): no traceback, nothing of Ray's."""
    lines = stderr.strip().splitlines()
    assert all(line.startswith("shardflow: ") for line in lines), stderr
    return [line for line in lines if line.startswith("shardflow: error:")]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}


def test_an_address_nobody_answers_is_one_line_and_exit_2_within_the_timeout(
        tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    done = subprocess.run(_run(tmp_path, "--address", address, "--ray-connect-timeout", "7"),
                          capture_output=True, text=True, timeout=60, env=_env(), check=False)
    assert done.returncode == 2, done.stderr
    errors = _only_shardflow_lines(done.stderr)
    assert len(errors) == 1 and address in errors[0], done.stderr
    assert "--ray-connect-timeout" in errors[0]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_connecting_stops_the_run_at_once(tmp_path: Path,
                                                         sig: signal.Signals) -> None:
    address = f"127.0.0.1:{free_port()}"
    driver = subprocess.Popen(_run(tmp_path, "--address", address, "--ray-connect-timeout",
                                   "600", "-v"), stderr=subprocess.PIPE, text=True, env=_env())
    assert driver.stderr is not None
    said = []
    for line in driver.stderr:  # the driver says when it starts joining
        said.append(line)
        if "joining" in line:
            break
    driver.send_signal(sig)
    try:
        _, rest = driver.communicate(timeout=60)  # not the 600 s of the timeout
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.communicate()
    expected = 143 if sig == signal.SIGTERM else 130
    assert driver.returncode == expected, "".join(said) + rest
    assert "Traceback" not in rest, rest


@pytest.mark.skipif(importlib.util.find_spec("grpc") is not None,
                    reason="Ray Client is installed here: ray:// is then Ray's to serve")
def test_a_ray_client_address_without_ray_client_is_one_line(tmp_path: Path) -> None:
    done = subprocess.run(_run(tmp_path, "--address", "ray://127.0.0.1:10001"),
                          capture_output=True, text=True, timeout=60, env=_env(), check=False)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "ray[client]" in done.stderr, done.stderr


@pytest.mark.parametrize(("entry", "problem"), [
    ("1BAD=x", "is not NAME or NAME=VALUE"),
    ("SHARDFLOW_TEST_UNSET_VARIABLE", "is not set here"),
])
def test_a_bad_ray_env_is_one_line_naming_it(tmp_path: Path, entry: str, problem: str) -> None:
    done = subprocess.run(_run(tmp_path, "--ray-env", entry), capture_output=True, text=True,
                          timeout=60, env=_env(), check=False)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and problem in done.stderr, done.stderr
    assert "--ray-env: " in done.stderr  # the flag the user gave (issue 23)
