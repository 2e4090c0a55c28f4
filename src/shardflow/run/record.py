"""``run.json``: what a run needs to be resumed, and its schema.

``run.json`` is read back by ``resume``, which imports the workflow it names: a damaged or
tampered file must be refused with the key that is wrong, never half-trusted. Every key is
required, unknown keys are refused, and each value must have its type; ``config`` is checked
by the one schema of run settings (``shardflow.batch.config.SETTINGS``) that checks TOML
configs too.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import orjson

from shardflow.batch.config import RunConfig, config_from_record
from shardflow.errors import ConfigError
from shardflow.run.errors import RunRecordError

FORMAT = 2
"""Version of the run directory's layout (2: checksummed journal, typed task ids)."""


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def input_fingerprint(path: str | None, fmt: str | None, generate: int | None) -> dict[str, Any]:
    """What identifies the input, so a resume can refuse a different one."""
    if generate is not None:
        return {"generate": generate}
    assert path is not None
    if path == "-":
        return {"stdin": True}
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return {"path": str(Path(path).resolve()), "format": fmt, "size": size,
            "sha256": digest.hexdigest()}


@dataclass
class RunRecord:
    run_id: str
    target: str
    workflow: dict[str, Any]
    input: dict[str, Any]
    output: str | None
    """Absolute path of ``--output`` as given (not resolved: ``/dev/fd/63`` stays itself),
    or ``None`` for stdout."""
    stream: bool
    """The output is not a regular file (stdout, a pipe, a FIFO, a device): never rebuilt."""
    config: dict[str, Any]
    started_at: float = field(default_factory=time.time)
    finished: bool = False
    format: int = FORMAT
    events: str | None = None
    """Absolute path of ``--events``, if the run wrote events: ``resume`` goes on writing
    them there (an older ``run.json`` has no such key)."""

    def run_config(self) -> RunConfig:
        """``config`` checked by the same schema as a TOML config (:data:`SETTINGS`)."""
        return config_from_record(self.config, "run.json")

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2)


_TYPES: dict[str, tuple[type, ...]] = {
    "run_id": (str,), "target": (str,), "workflow": (dict,), "input": (dict,),
    "output": (str, type(None)), "stream": (bool,), "config": (dict,),
    "started_at": (float, int), "finished": (bool,), "format": (int,),
    "events": (str, type(None)),
}
_OPTIONAL: dict[str, Any] = {"events": None}
"""Keys added after format 2 was fixed, with the value a file without them means."""
assert set(_TYPES) == {f.name for f in fields(RunRecord)}


def parse_record(path: Path, data: bytes) -> RunRecord:
    """``run.json``'s bytes as a :class:`RunRecord`; anything else is a
    :class:`RunRecordError` naming the file and the key."""
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        what = "is empty" if not data.strip() else f"is truncated or not JSON ({exc})"
        raise RunRecordError(path, what + "; it was damaged or edited by hand") from None
    if not isinstance(raw, dict):
        raise RunRecordError(path, f"expected a JSON object, got {type(raw).__name__}")
    if "format" not in raw and "run_id" in raw and "target" in raw:
        raise RunRecordError(path, "written by an older shardflow (run directory format 1, "
                             f"this one reads format {FORMAT}); finish the run with that "
                             "version", "format")
    unknown = sorted(set(raw) - set(_TYPES))
    if unknown:
        raise RunRecordError(path, "unknown key (this file was not written by shardflow)",
                             unknown[0])
    raw = {**_OPTIONAL, **raw}
    missing = [key for key in _TYPES if key not in raw]
    if missing:
        raise RunRecordError(path, "missing (the file is incomplete)", missing[0])
    for key, types in _TYPES.items():
        value = raw[key]
        if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
            names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise RunRecordError(path, f"expected {names}, got {type(value).__name__}", key)
    if raw["format"] != FORMAT:
        raise RunRecordError(path, f"run directory format {raw['format']}, this shardflow "
                             f"reads format {FORMAT}", "format")
    record = RunRecord(**raw)
    try:
        record.run_config()
    except ConfigError as exc:
        raise RunRecordError(path, str(exc), "config") from None
    return record


def write_private(path: Path, data: bytes) -> None:
    """Write ``path`` atomically (a crash leaves the old or the new file), mode 0600."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)
