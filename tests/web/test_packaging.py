"""The page ships in the package: every static file matches the package-data patterns."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_static_file_is_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["shardflow"]
    static = ROOT / "src" / "shardflow" / "web" / "static"
    files = [p.relative_to(static.parent.parent).as_posix() for p in static.iterdir()]
    assert {"web/static/index.html", "web/static/app.js", "web/static/form.js",
            "web/static/style.css"} <= set(files)
    missing = [f for f in files if not any(fnmatch.fnmatch(f, p) for p in patterns)]
    assert not missing, f"not shipped in the wheel: {missing}"


def test_the_web_extra_names_the_server_stack() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert {d.split(">")[0] for d in extras["web"]} == {"litestar", "uvicorn"}
