"""What the Ray backend's tests share: reading outputs, waiting for a held instance."""

from __future__ import annotations

import os
import select
import subprocess
from pathlib import Path
from typing import Any

from support.e2e import by_id, read_results


def results_of(path: Path) -> dict[Any, dict[str, Any]]:
    """Results keyed by id; fails if any id appears twice."""
    return by_id(read_results(path))


def started_or_exited(fifo: Path, driver: subprocess.Popen[bytes]) -> tuple[bool, bytes]:
    """Wait until the held instance writes to ``fifo`` (True) or the driver exits (its
    stderr ends: False, and what it said), whichever comes first; no timer."""
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    assert driver.stderr is not None
    err = driver.stderr.fileno()
    said = b""
    try:
        while True:
            ready, _, _ = select.select([fd, err], [], [])
            if fd in ready and os.read(fd, 64):
                return True, said
            if err in ready:
                chunk = os.read(err, 65536)
                if not chunk:
                    return False, said
                said += chunk
    finally:
        os.close(fd)
