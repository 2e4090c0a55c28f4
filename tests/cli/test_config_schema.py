"""One schema for every run setting: the TOML config and run.json's ``config`` are refused
the same way, naming the key and the type it must have."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from shardflow.batch.config import RunConfig, load_config
from shardflow.errors import ConfigError
from shardflow.run.errors import RunRecordError
from shardflow.run.record import RunRecord, parse_record


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "message"), [
    ('[run]\nworkers = "two"\n', "config 'run.workers': expected an integer >= 1, got \"two\""),
    ("[run]\nworkers = 0\n", "config 'run.workers': expected an integer >= 1, got 0"),
    ("[run]\nworkers = true\n", "config 'run.workers': expected an integer >= 1, got true"),
    ('[run]\nordered = "yes"\n', "config 'run.ordered': expected true or false, got \"yes\""),
    ("[run]\nordered = 1\n", "config 'run.ordered': expected true or false, got 1"),
    ('[run]\nhard_timeout = "5"\n', "config 'run.hard_timeout': expected a number > 0, got \"5\""),
    ("[limits]\ndb = 2.5\n", "config 'limits.db': expected an integer >= 1, got 2.5"),
    ('[rate_limits]\napi = "fast"\n', "config 'rate_limits.api': 'fast' is not a rate"),
    ("limits = 3\n", "config 'limits': expected a table, got 3"),
])
def test_a_wrong_toml_value_names_the_key_and_the_type(tmp_path: Path, text: str,
                                                        message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(_toml(tmp_path, text))
    assert str(caught.value).startswith(message)


def test_right_toml_values_are_kept(tmp_path: Path) -> None:
    config = load_config(_toml(tmp_path, "[run]\nworkers = 3\nordered = true\nhard_timeout = 5\n"
                                          '[limits]\ndb = 2\n[rate_limits]\napi = "10/s"\n'))
    assert (config.workers, config.ordered, config.hard_timeout) == (3, True, 5)
    assert config.limits == {"db": 2} and config.rate_limits == {"api": "10/s"}


def _record(tmp_path: Path, config: dict[str, object]) -> tuple[Path, bytes]:
    record = RunRecord("r", "m:w", {}, {"generate": 1}, None, True, config)
    return tmp_path / "run.json", orjson.dumps({**orjson.loads(record.to_json()), "config": config})


@pytest.mark.parametrize(("change", "needle"), [
    ({"ordered": "yes"}, "config 'ordered': expected true or false, got \"yes\""),
    ({"workers": "two"}, "config 'workers': expected an integer >= 1, got \"two\""),
    ({"limits": {"db": "x"}}, "config 'limits.db': expected an integer >= 1"),
    ({"surprise": 1}, "config 'surprise': run.json: unknown setting"),
])
def test_run_json_config_is_checked_by_the_same_schema(tmp_path: Path, change: dict[str, object],
                                                       needle: str) -> None:
    path, data = _record(tmp_path, {**RunConfig(workers=2).to_dict(), **change})
    with pytest.raises(RunRecordError) as caught:
        parse_record(path, data)
    assert needle in str(caught.value) and "config" in str(caught.value)


def test_run_json_config_round_trips(tmp_path: Path) -> None:
    config = RunConfig(workers=2, ordered=True, limits={"db": 3}, rate_limits={"api": "5/s"})
    path, data = _record(tmp_path, config.to_dict())
    assert parse_record(path, data).run_config() == config


def test_keyword_arguments_are_checked_too() -> None:
    with pytest.raises(ConfigError, match="config 'max_in_flight': expected an integer >= 1, got \"9\""):
        RunConfig(**{"max_in_flight": "9"})
