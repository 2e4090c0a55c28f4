"""The command line behaves like the tools people know: -h, short options, SHARDFLOW_*
variables, defaults in help, and contradictory or useless options refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from shardflow.batch.config import RunConfig
from shardflow.cli import run_command
from shardflow.cli.main import cli

FLOWS = Path(__file__).parent / "flows.py"


def target(name: str) -> str:
    return f"{FLOWS}:{name}"


COMMANDS = [[], ["run"], ["resume"], ["validate"], ["graph"], ["bench"], ["tasks"], ["tasks", "list"],
            ["runs"], ["runs", "prune"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "shardflow")
@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_every_command_has_short_and_long_help(command: list[str], flag: str) -> None:
    result = CliRunner().invoke(cli, [*command, flag])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage: ")


def test_run_help_shows_env_vars_and_defaults() -> None:
    text = CliRunner().invoke(cli, ["run", "-h"], terminal_width=200).output
    for needle in ("-w, --workers N", "SHARDFLOW_WORKERS", "SHARDFLOW_MAX_IN_FLIGHT",
                   "SHARDFLOW_INPUT", "default: (CPU count)", "default: 10.0", "-v, --verbose",
                   "-q, --quiet", "--log-level", "SHARDFLOW_LOG_LEVEL"):
        assert needle in text, needle


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[RunConfig]:
    """execute_run replaced: what the command would run with."""
    configs: list[RunConfig] = []

    def fake(target: str, definition: Any, config: RunConfig, **kwargs: Any) -> int:
        configs.append(config)
        return 0

    monkeypatch.setattr(run_command, "execute_run", fake)
    return configs


def _run(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(cli, ["run", target("throttled"), "--generate", "3", *args], env=env)


def test_short_workers_option(captured: list[RunConfig]) -> None:
    assert _run("-w", "3").exit_code == 0
    assert captured[-1].workers == 3


def test_options_are_read_from_the_environment(captured: list[RunConfig]) -> None:
    result = _run(env={"SHARDFLOW_WORKERS": "2", "SHARDFLOW_MAX_IN_FLIGHT": "7",
                       "SHARDFLOW_LIMIT": "db=4", "SHARDFLOW_ORDERED": "true"})
    assert result.exit_code == 0, result.output
    config = captured[-1]
    assert (config.workers, config.max_in_flight, config.limits, config.ordered) == (2, 7, {"db": 4}, True)


def test_the_command_line_wins_over_the_environment(captured: list[RunConfig]) -> None:
    assert _run("--workers", "1", env={"SHARDFLOW_WORKERS": "2"}).exit_code == 0
    assert captured[-1].workers == 1


@pytest.mark.parametrize("args", [["--workers", "0"], ["-w", "-1"], ["--max-in-flight", "0"],
                                  ["--generate", "-5"], ["--hard-timeout", "0"],
                                  ["--grace-seconds", "-1"]])
def test_impossible_counts_are_usage_errors(captured: list[RunConfig], args: list[str]) -> None:
    result = _run(*args)
    assert result.exit_code == 2
    assert "Invalid value" in result.output and args[0].lstrip("-") in result.output
    assert not captured


def test_a_limit_given_twice_with_different_values_is_refused(captured: list[RunConfig]) -> None:
    result = _run("--limit", "db=5", "--limit", "db=7")
    assert result.exit_code == 2
    assert "--limit db: given twice with different values (5 and 7)" in result.output
    assert not captured
    assert _run("--limit", "db=5", "--limit", "db=5").exit_code == 0


def test_a_limit_no_step_uses_is_warned_about(captured: list[RunConfig]) -> None:
    result = _run("--limit", "dbb=3", "--rate-limit", "api=5/s", "--rate-limit", "apj=1/s")
    assert result.exit_code == 0
    assert ("shardflow: warning: limit 'dbb' is used by no step of throttled (the steps use: db; "
            "did you mean 'db'?)"
            in result.stderr)
    assert "rate limit 'apj' is used by no step" in result.stderr
    assert "rate limit 'api'" not in result.stderr  # used: no warning


def test_unused_limits_of_a_config_file_are_warned_about(captured: list[RunConfig],
                                                        tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text("[limits]\ndb = 2\nunused = 3\n")
    result = _run("-c", str(config))
    assert result.exit_code == 0
    assert "limit 'unused' is used by no step" in result.stderr


def test_verbose_and_quiet_together_are_refused(captured: list[RunConfig]) -> None:
    result = _run("-v", "-q")
    assert result.exit_code == 2 and "contradict" in result.output
    assert _run("-q", "--log-level", "debug").exit_code == 2
    assert not captured


def test_short_version_flag() -> None:
    from importlib.metadata import version

    result = CliRunner().invoke(cli, ["-V"])
    assert result.exit_code == 0 and version("shardflow") in result.output


def test_subcommand_options_are_read_from_the_environment_too(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(cli, ["runs", "prune", "--base", str(tmp_path)])
    assert missing.exit_code == 2 and "--older-than" in missing.output
    given = runner.invoke(cli, ["runs", "prune", "--base", str(tmp_path)],
                          env={"SHARDFLOW_RUNS_PRUNE_OLDER_THAN": "7d"})
    assert given.exit_code == 0, given.output
    text = runner.invoke(cli, ["tasks", "list", "-h"], terminal_width=200).output
    assert "SHARDFLOW_TASKS_LIST_ASSIGNEE" in text and "SHARDFLOW_TASKS_LIST_JSON" in text
    assert runner.invoke(cli, ["runs", "prune", "--older-than", "7d", "--keep", "-1"]).exit_code == 2
