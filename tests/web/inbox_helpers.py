"""Helpers for the web inbox tests: real run directories, made run directories, a client."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from shardflow.model.tasks import HumanTask
from shardflow.store.tasks import SQLiteTaskStore, WaitingInstance

if TYPE_CHECKING:
    from litestar.testing import TestClient

needs_web = pytest.mark.skipif(
    importlib.util.find_spec("litestar") is None or importlib.util.find_spec("uvicorn") is None,
    reason="the web extra is not installed: pip install 'shardflow[web]'")

TOKEN = "test-token-0123456789"
SRC = Path(__file__).resolve().parents[2] / "src"
ORDER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "approved": {"type": "boolean", "title": "Approved?"},
        "amount": {"type": "number", "minimum": 0},
        "count": {"type": "integer"},
        "risk": {"type": "string", "enum": ["low", "high"]},
        "owner": {"type": "object", "title": "Owner",
                  "properties": {"name": {"type": "string"}, "a/b~c": {"type": "string"}},
                  "required": ["name"]},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["approved", "risk", "owner"],
}


def env() -> dict[str, str]:
    """The environment for shardflow subprocesses: this worktree's sources first."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])])}


def approvals_run(base: Path, n: int = 3, name: str | None = "run") -> tuple[Path, Path]:
    """A real batch run of the guide's approvals: ``n`` instances waiting, 3 tasks each, in
    ``base/name`` (``None``: the default ``.shardflow/runs/<run-id>``). Runs with ``base`` as
    working directory, so ``.shardflow/`` stays inside it."""
    output = base / f"{name or 'default'}-out.jsonl"
    where = ["--run-dir", str(base / name)] if name else []
    subprocess.run([sys.executable, "-m", "shardflow", "run",
                    "shardflow.examples.approvals:workflow", "--generate", str(n), *where,
                    "--output", str(output), "--no-progress", "--workers", "1"],
                   cwd=base, env=env(), check=True, capture_output=True, timeout=60)
    run_dir = base / name if name else Path((base / ".shardflow" / "last-run").read_text().strip())
    return run_dir, output


def made_run(path: Path, tasks: list[tuple[str, str, str | None, dict[str, Any] | None]],
             created: float = 1000.0) -> list[HumanTask]:
    """A run directory whose tasks.db holds one waiting instance per (instance, step,
    assignee, schema), made through the store's public API; created one second apart."""
    path.mkdir(parents=True, exist_ok=True)
    made = []
    store = SQLiteTaskStore(path / "tasks.db")
    try:
        for i, (instance, step, assignee, schema) in enumerate(tasks):
            task = HumanTask(id=f"{path.name}-t{i}", instance_id=instance, node="review",
                             step=step, title=f"Review {step} {instance}", form_schema=schema,
                             assignee=assignee, due_at=None, created_at=created + i)
            store.save_waiting([WaitingInstance(instance, "wf", "1", i, {}, [task])])
            made.append(task)
    finally:
        store.close()
    return made


class Api:
    """A TestClient sending the token (unless ``token`` is None) on every request and the
    server's own ``Origin`` on every POST, as the page does."""

    def __init__(self, client: TestClient[Any], token: str | None = TOKEN,
                 origin: str = "http://127.0.0.1:8765") -> None:
        self.client = client
        self.auth = {"authorization": f"Bearer {token}"} if token else {}
        self.origin = origin

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, headers={**self.auth, **kw.pop("headers", {})}, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> Any:
        headers = {**self.auth, "origin": self.origin, **kw.pop("headers", {})}
        if json is not None:
            kw["content"] = orjson.dumps(json)
            headers.setdefault("content-type", "application/json")
        sent = {k: v for k, v in headers.items() if v is not None}  # None: leave it out
        return self.client.post(path, headers=sent, **kw)


def http_get(url: str, token: str | None = None) -> tuple[int, Any]:
    """GET ``url`` from a real server: its status and JSON body."""
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=90) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())


def output_records(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]



class Server:
    """``shardflow tasks serve`` as a real process in its own process group, on a free port
    (``--port 0``); its start-up lines give the URL. Stop it with :meth:`stop`."""

    def __init__(self, run_dirs: list[Path], *args: str, cwd: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "shardflow", "tasks", "serve", *map(str, run_dirs),
             "--port", "0", *args],
            cwd=cwd, env=env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True, start_new_session=True)
        assert self.process.stderr is not None
        self.lines: list[str] = []
        for line in self.process.stderr:  # blocks until the server prints (or dies)
            self.lines.append(line.rstrip("\n"))
            if line.startswith("open "):
                break
        else:
            raise AssertionError(f"server did not start: {self.lines}")
        self.url = self.lines[-1].removeprefix("open ")
        self.base = self.url.split("/?")[0].rstrip("/")
        self.token = self.url.split("token=")[1] if "token=" in self.url else None
        self._drain = threading.Thread(target=self._read_rest, daemon=True)
        self._drain.start()

    def _read_rest(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def stop(self) -> int:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        code = self.process.wait(timeout=30)
        self._drain.join(timeout=30)
        assert self.process.stderr is not None
        self.process.stderr.close()
        return code
