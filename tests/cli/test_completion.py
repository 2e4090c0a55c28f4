"""Shell completion works as docs/CLI.md documents it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CLI_DOC = (Path(__file__).parent.parent.parent / "docs" / "CLI.md").read_text()


def _shardflow(env: dict[str, str]) -> str:
    proc = subprocess.run([sys.executable, "-m", "shardflow"], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_the_documented_bash_script_is_produced() -> None:
    assert 'eval "$(_SHARDFLOW_COMPLETE=bash_source shardflow)"' in CLI_DOC
    assert "complete -o nosort -F _shardflow_completion shardflow" in _shardflow(
        {"_SHARDFLOW_COMPLETE": "bash_source"})


def test_options_complete() -> None:
    out = _shardflow({"_SHARDFLOW_COMPLETE": "bash_complete", "COMP_WORDS": "shardflow run --wor",
                      "COMP_CWORD": "2"})
    assert "plain,--workers" in out.splitlines()
