"""A closed or full output ends the run cleanly: ``| head -1`` exits 141 quietly and runs
nothing twice; a file size limit or a full filesystem is one ``shardflow: error:`` line and
exit 3; afterwards ``resume`` finishes the run exactly once.

An instance whose result could not be journalled (the disk was full) runs again on resume,
as after a crash; one that was journalled never does.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from support.e2e import by_id, read_results
from support.runs import effects, run_flow

EFFECT = run_flow("effect")


def _shardflow(test_dir: Path, *args: str, timeout: float = 60,
               preexec: Callable[[], None] | None = None,
               stdout: int | None = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SHARDFLOW_TEST_DIR": str(test_dir)}
    return subprocess.Popen([sys.executable, "-m", "shardflow", *args], env=env, stdout=stdout,
                            stderr=subprocess.PIPE, preexec_fn=preexec, start_new_session=True)


def _finish(proc: subprocess.Popen[bytes], timeout: float = 60) -> str:
    """Wait for the process; past ``timeout`` end its whole group (it started one) and fail."""
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"shardflow did not end within {timeout} s")
    return err.decode()


def _journalled(run_dir: Path) -> set[str]:
    """Ids the journal holds (a full disk may have cut its last line)."""
    lines = (run_dir / "journal.jsonl").read_bytes().split(b"\n")[:-1]
    return {line.split(b"\t", 1)[0].decode() for line in lines}


def _ran_again(test_dir: Path) -> set[str]:
    return {i for i, count in Counter(effects(test_dir)).items() if count > 1}


def _resume(test_dir: Path, run_dir: Path) -> str:
    proc = _shardflow(test_dir, "resume", str(run_dir), "--no-progress")
    err = _finish(proc)
    assert proc.returncode == 0, err
    return err


def test_head_1_ends_the_run_quietly_and_nothing_runs_twice(tmp_path: Path,
                                                           test_dir: Path) -> None:
    run_dir = tmp_path / "run"
    proc = _shardflow(test_dir, "run", EFFECT, "--generate", "3000", "--workers", "1",
                      "--no-progress", "--run-dir", str(run_dir), stdout=subprocess.PIPE)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # what head -1 does after its line
    err = _finish(proc, timeout=20)
    assert first.startswith(b'{"id":')
    assert proc.returncode == 141, err
    assert "Traceback" not in err and "error" not in err.lower()
    assert max(Counter(effects(test_dir)).values()) == 1
    _resume(test_dir, run_dir)
    assert max(Counter(effects(test_dir)).values()) == 1
    journal = (run_dir / "journal.jsonl").read_bytes().splitlines()
    assert len(journal) == 3000


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))


def test_a_file_size_limit_is_one_error_line_and_exit_3(tmp_path: Path, test_dir: Path) -> None:
    run_dir, out = tmp_path / "run", tmp_path / "out.jsonl"
    proc = _shardflow(test_dir, "run", EFFECT, "--generate", "2000", "--workers", "1",
                      "--no-progress", "--output", str(out), "--run-dir", str(run_dir),
                      preexec=_limit_file_size)
    err = _finish(proc, timeout=20)
    assert proc.returncode == 3, err
    errors = [line for line in err.splitlines() if line.startswith("shardflow: error:")]
    assert len(errors) == 1 and "EFBIG" in errors[0] and "Traceback" not in err
    assert str(run_dir / "journal.jsonl") in errors[0] or str(out) in errors[0]
    journalled = _journalled(run_dir)
    _resume(test_dir, run_dir)
    assert sorted(by_id(read_results(out))) == list(range(2000))
    assert not _ran_again(test_dir) & journalled, "a journalled instance ran again"


@pytest.fixture
def small_fs(tmp_path: Path) -> Path:
    """A 256 KB tmpfs inside tmp_path (skipped where it cannot be mounted)."""
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                          capture_output=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_full_filesystem_is_exit_3_and_resume_after_making_room(small_fs: Path,
                                                                  test_dir: Path) -> None:
    run_dir, out = small_fs / "run", small_fs / "out.jsonl"
    proc = _shardflow(test_dir, "run", EFFECT, "--generate", "3000", "--workers", "1",
                      "--no-progress", "--output", str(out), "--run-dir", str(run_dir))
    err = _finish(proc, timeout=20)
    assert proc.returncode == 3, err
    errors = [line for line in err.splitlines() if line.startswith("shardflow: error:")]
    assert len(errors) == 1 and "ENOSPC" in errors[0] and "Traceback" not in err
    journalled = _journalled(run_dir)
    subprocess.run(["mount", "-o", "remount,size=16m", str(small_fs)], check=True)
    _resume(test_dir, run_dir)
    assert sorted(by_id(read_results(out))) == list(range(3000))
    assert not _ran_again(test_dir) & journalled, "a journalled instance ran again"
