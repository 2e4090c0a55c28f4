"""A workflow module whose import (in the CLI process, with SHARDFLOW_SLOW_IMPORT=cli) tells
the test it started, then blocks until a signal ends the process."""

from __future__ import annotations

import os
import sys
from pathlib import Path

_dir = Path(os.environ["SHARDFLOW_TEST_DIR"])
_main = getattr(sys.modules["__main__"], "__spec__", None)
_where = "worker" if _main is not None and _main.name == "shardflow.batch.worker" else "cli"
if os.environ.get("SHARDFLOW_SLOW_IMPORT") == _where:
    with open(_dir / "importing.fifo", "w") as fifo:
        fifo.write(str(os.getpid()))
    with open(_dir / "never.fifo") as never:  # blocks until a signal ends the process
        never.read()

from flows import effect  # noqa: E402

workflow = effect
