"""Helpers for end-to-end tests: input files, result files, workflow references."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson

FLOWS = str(Path(__file__).parent.parent / "batch" / "flows.py")

CliRun = Callable[..., subprocess.CompletedProcess[str]]


def flow(name: str) -> str:
    return f"{FLOWS}:{name}"


def write_jsonl(path: Path, records: Iterable[Any]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


def read_results(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def by_id(results: list[dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    """Results keyed by id; fails if any id appears twice."""
    keyed: dict[Any, dict[str, Any]] = {}
    for result in results:
        assert result["id"] not in keyed, f"id {result['id']!r} appears twice"
        keyed[result["id"]] = result
    return keyed
