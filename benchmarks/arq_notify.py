"""arq running the same notify fork/join, for the figure recorded beside the consumer's
(``bench_consume.py``). arq is not a dependency: ``pip install arq`` into the venv to measure.

Run as ``python benchmarks/arq_notify.py PORT``: one burst worker, 100 jobs at a time.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from arq.connections import RedisSettings
from arq.worker import run_worker


async def _noop(ctx: dict[str, Any], key: str) -> None:
    ctx[key] = True


async def notify(_: Any, data: dict[str, Any]) -> dict[str, Any]:
    await _noop(data, "processed")
    await asyncio.gather(_noop(data, "email_sent"), _noop(data, "slack_sent"), _noop(data, "sms_sent"))
    data["channels"] = [c for c in ("email", "slack", "sms") if data.get(f"{c}_sent")]
    return data


if __name__ == "__main__":
    port = int(sys.argv[1])

    class Settings:
        functions = [notify]
        redis_settings = RedisSettings(host="127.0.0.1", port=port)
        max_jobs = 100
        burst = True
        keep_result = 60

    run_worker(Settings)  # type: ignore[arg-type]
