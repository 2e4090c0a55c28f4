"""``shardflow tasks serve`` itself: its errors, and a real server process."""

from __future__ import annotations

import signal
import socket
import sys
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from shardflow.cli.main import cli
from web.inbox_helpers import Server, approvals_run, http_get, made_run, needs_web


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, ["tasks", "serve", *args])


def test_without_the_web_extra_it_exits_2_with_the_install_command(monkeypatch: Any,
                                                                   tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "litestar", None)  # find_spec then reports it missing
    result = _invoke(str(tmp_path))
    assert result.exit_code == 2
    assert "pip install 'shardflow[web]'" in result.output
    assert "litestar" in result.output


@needs_web
def test_no_token_is_refused_off_loopback(tmp_path: Path) -> None:
    made_run(tmp_path / "r", [("1", "s", None, None)])
    result = _invoke(str(tmp_path / "r"), "--host", "0.0.0.0", "--no-token")
    assert result.exit_code == 2
    assert "--no-token is only allowed on a loopback host" in result.output


@needs_web
def test_a_run_without_tasks_is_one_clear_error(tmp_path: Path) -> None:
    result = _invoke(str(tmp_path))
    assert result.exit_code == 2
    assert f"{tmp_path.resolve()} has no human tasks (no tasks.db)" in result.output


@needs_web
def test_a_busy_port_is_one_clear_error(tmp_path: Path) -> None:
    made_run(tmp_path / "r", [("1", "s", None, None)])
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _invoke(str(tmp_path / "r"), "--port", str(port))
    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.output


@needs_web
def test_a_real_server_prints_its_url_and_token_and_stops_on_sigterm(tmp_path: Path) -> None:
    run_dir, _ = approvals_run(tmp_path)
    server = Server([run_dir], "--user", "dora", cwd=tmp_path)
    try:
        assert server.lines[0] == "shardflow inbox for dora, runs: run"
        assert server.url.startswith("http://127.0.0.1:") and server.token
        assert http_get(f"{server.base}/api/session")[0] == 401
        status, body = http_get(f"{server.base}/api/tasks", server.token)
        assert (status, body["total"]) == (200, 9)
    finally:
        code = server.stop()
    assert code == -signal.SIGTERM  # uvicorn shuts down, then re-raises the signal (143)
    assert not [line for line in server.lines if "Traceback" in line]
    assert not [line for line in server.lines if "token=" in line][1:]  # printed once, not logged


@needs_web
def test_runs_default_to_the_ones_with_tasks_here(tmp_path: Path) -> None:
    first, _ = approvals_run(tmp_path, name=None)
    second, _ = approvals_run(tmp_path, name=None)
    server = Server([], "--no-token", cwd=tmp_path)
    try:
        status, body = http_get(f"{server.base}/api/session")
    finally:
        server.stop()
    assert status == 200
    assert sorted(body["runs"]) == sorted([first.name, second.name])
