"""The run tests' fixtures (see support/runs.py)."""

from support.runs import cli, start, test_dir

__all__ = ["cli", "start", "test_dir"]
