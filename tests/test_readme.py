"""The README's examples run as written, and its config example is a valid config."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from shardflow.batch.config import load_config

ROOT = Path(__file__).parent.parent


def test_readme_workflow_example_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    code = re.findall(r"```python\n(.*?)```", readme, re.S)[0]
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("completed") and "'done': True" in proc.stdout


def test_readme_opens_with_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.findall(r"```sh\n(.*?)```", readme, re.S)[0]
    lines = block.strip().splitlines()
    assert len(lines) == 2
    # the first code block, right after the title's paragraph: nothing to scroll past
    assert readme.index("```sh") == readme.index("```") < 1000
    assert "shardflow run" in lines[0] and "pytest" in lines[1]


def test_example_config_loads() -> None:
    config = load_config(ROOT / "configs" / "example.toml")
    assert config.workers == 2 and config.limits == {"email_api": 50}
    assert config.rate_limits == {"sms": "100/s burst 20"}


def test_readme_embedding_example_runs(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", readme, re.S)
                 if "BatchExecutor" in b)
    code = block.replace("myapp.flows:workflow", "shardflow.examples.notify:workflow") + (
        "\nif __name__ == '__main__':\n"
        "    asyncio.run(job_processor([{'id': i} for i in range(5)]))\n"
        "    asyncio.run(nightly([{'id': i} for i in range(3)]))\n")
    script = tmp_path / "service.py"
    script.write_text(code)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, check=False, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [line.split()[:2] for line in proc.stdout.splitlines()] == [
        [str(i), "completed"] for i in range(5)]
    assert (tmp_path / "state" / "nightly" / "journal.jsonl").is_file()


def test_readme_first_screen_says_why_with_figures_and_stays_short() -> None:
    """The first screen (up to the first section): what shardflow is, the two commands, and
    measured figures beside the tools people know, with the command that reproduces them."""
    readme = (ROOT / "README.md").read_text()
    first_screen = readme[:readme.index("\n## ")]
    assert "```sh" in first_screen and len(first_screen.splitlines()) < 60
    for peer in ("Celery", "arq", "Ray", "Dask", "GNU parallel", "by hand"):
        row = next(line for line in first_screen.splitlines() if line.startswith("|") and peer in line)
        assert re.search(r"\| \**[\d,]+(-[\d,]+)?\** \|", row), row  # measured, not a placeholder
    assert "python scripts/peers.py all" in first_screen and (ROOT / "scripts" / "peers.py").is_file()
    assert len(readme.splitlines()) < 250


def test_readme_links_only_docs_that_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in re.findall(r"`(docs/[\w./-]+)`", readme) + re.findall(r"\]\((docs/[^)]+)\)", readme):
        assert (ROOT / name).exists(), name
