"""run.json is validated before resume trusts it: truncation, unknown keys and wrong types
are named with the file and the key."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import orjson
import pytest

from shardflow.run.errors import RunLockedError, RunRecordError
from shardflow.run.lock import RunLock, holder
from shardflow.run.record import RunRecord, parse_record


def _record() -> RunRecord:
    return RunRecord(run_id="r1", target="m:w", workflow={"name": "w"}, input={"generate": 3},
                     output=None, stream=True, config={"workers": 1})


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.update(extra=1), "key 'extra': unknown key"),
    (lambda d: d.update(finished="yes"), "key 'finished': expected bool, got str"),
    (lambda d: d.update(output=5), "key 'output': expected str or null, got int"),
    (lambda d: d.pop("target"), "key 'target': missing"),
    (lambda d: d.update(config={"wrokers": 2}), "key 'config'"),
    (lambda d: d.update(started_at=True), "key 'started_at': expected float or int, got bool"),
])
def test_a_tampered_record_is_refused_naming_the_key(change: object, message: str) -> None:
    data = asdict(_record())
    assert callable(change)
    change(data)
    with pytest.raises(RunRecordError, match=message):
        parse_record(Path("run.json"), orjson.dumps(data))


def test_a_record_of_an_older_shardflow_is_named_as_such() -> None:
    data = asdict(_record())
    del data["format"], data["stream"]
    with pytest.raises(RunRecordError, match="older shardflow"):
        parse_record(Path("run.json"), orjson.dumps(data))


def test_a_truncated_record_is_named_as_such() -> None:
    record = _record()
    text = record.to_json()
    with pytest.raises(RunRecordError, match=r"run\.json: is truncated or not JSON"):
        parse_record(Path("run.json"), text[: len(text) // 2])
    assert parse_record(Path("run.json"), text) == record


def test_a_second_holder_is_refused_with_the_pid_of_the_first(tmp_path: Path) -> None:
    first = RunLock(tmp_path).acquire()
    with pytest.raises(RunLockedError, match=rf"in use by process {os.getpid()}"):
        RunLock(tmp_path).acquire()  # flock is per open file: this conflicts like a process
    assert holder(tmp_path) is not None
    first.release()
    assert holder(tmp_path) is None
    RunLock(tmp_path).acquire().release()
