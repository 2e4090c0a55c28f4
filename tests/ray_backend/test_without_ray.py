"""Ray is an optional extra: nothing imports it unless the Ray backend is chosen, and
choosing it without Ray installed is one clear error naming the install command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_WITHOUT_RAY = "import sys; sys.modules['ray'] = None\n"  # ``import ray`` now raises ImportError


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=cwd, timeout=60, check=False)


def test_shardflow_and_a_process_run_never_import_ray(tmp_path: Path) -> None:
    done = _python(
        "import sys\n"
        "import shardflow, shardflow.cli.main\n"
        "from shardflow.run.executor import run_batch\n"
        "run_batch('shardflow.examples.notify:workflow', [{'id': 1}], workers=1)\n"
        "assert 'ray' not in sys.modules, 'ray was imported'\n", tmp_path)
    assert done.returncode == 0, done.stderr


def test_backend_ray_without_ray_exits_2_with_the_install_command(tmp_path: Path) -> None:
    done = _python(_WITHOUT_RAY + (
        "from shardflow.cli.main import main\n"
        "sys.argv = ['shardflow', 'run', 'shardflow.examples.notify:workflow', '--generate',"
        " '3', '--backend', 'ray', '--run-dir', 'run', '--no-progress']\n"
        "main()\n"), tmp_path)
    assert done.returncode == 2, done.stderr
    assert "pip install 'shardflow[ray]'" in done.stderr
    assert not (tmp_path / "run").exists()  # nothing started


def test_the_executor_without_ray_raises_the_same_error(tmp_path: Path) -> None:
    done = _python(_WITHOUT_RAY + (
        "import asyncio\n"
        "from shardflow.run.executor import BatchExecutor\n"
        "from shardflow.errors import ConfigError\n"
        "async def main():\n"
        "    async with BatchExecutor('shardflow.examples.notify:workflow', backend='ray'):\n"
        "        pass\n"
        "try:\n"
        "    asyncio.run(main())\n"
        "except ConfigError as exc:\n"
        "    print(exc)\n"), tmp_path)
    assert done.returncode == 0, done.stderr
    assert "pip install 'shardflow[ray]'" in done.stdout
