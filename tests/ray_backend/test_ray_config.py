"""The backend's settings: ``[run] backend`` and the ``[ray]`` table, as a run records them."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from shardflow.batch.config import RaySettings, RunConfig, config_from_mapping
from shardflow.errors import ConfigError


def test_the_ray_table_sets_the_backends_settings() -> None:
    config = config_from_mapping({"run": {"backend": "ray", "workers": 4},
                                  "ray": {"address": "auto", "batch_size": 64,
                                          "batch_bytes": 50_000, "calls_in_flight": 2,
                                          "working_dir": "src"}})
    assert config.backend == "ray"
    assert config.ray == RaySettings(address="auto", working_dir="src", batch_size=64,
                                     batch_bytes=50_000, calls_in_flight=2)


def test_a_recorded_config_reads_back_with_its_backend() -> None:
    config = RunConfig(backend="ray", ray=RaySettings(address="10.0.0.1:6379", batch_size=8))
    assert RunConfig(**asdict(config)) == config  # what ``resume`` reads from run.json


def test_a_run_recorded_before_backends_existed_is_a_process_run() -> None:
    recorded = {k: v for k, v in asdict(RunConfig()).items() if k not in ("backend", "ray")}
    assert RunConfig(**recorded).backend == "process"


def test_the_ray_table_sets_shipping_connecting_and_the_actors_environment() -> None:
    config = config_from_mapping({"ray": {"connect_timeout": 5, "excludes": ["data/", "*.bin"],
                                          "env": ["API_TOKEN", "REGION=eu"],
                                          "ship_shardflow": True}})
    assert config.ray == RaySettings(connect_timeout=5, excludes=["data/", "*.bin"],
                                     env=["API_TOKEN", "REGION=eu"], ship_shardflow=True)
    assert RunConfig(**asdict(config)) == config  # as run.json records it


@pytest.mark.parametrize(("data", "key"), [
    ({"ray": {"connect_timeout": 0}}, "ray.connect_timeout"),
    ({"ray": {"excludes": "data/"}}, "ray.excludes"),
    ({"ray": {"env": ["A", 3]}}, "ray.env"),
    ({"ray": {"ship_shardflow": "yes"}}, "ray.ship_shardflow"),
    ({"ray": {"adress": "auto"}}, "ray.adress"),
    ({"ray": {"batch_size": 0}}, "ray.batch_size"),
    ({"ray": {"calls_in_flight": True}}, "ray.calls_in_flight"),
    ({"run": {"backend": "dask"}}, "run.backend"),
])
def test_a_bad_setting_is_one_error_naming_its_key(data: dict[str, dict[str, object]],
                                                   key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config_from_mapping(data, "shardflow.toml")
    assert caught.value.key == key
