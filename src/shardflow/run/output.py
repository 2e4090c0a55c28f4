"""The output: opened without ever being destroyed, written, and reconciled on resume.

``--output`` is never unlinked, renamed over or replaced at run start: a regular file is
truncated in place, anything else (stdout, a pipe, a FIFO, a device such as ``/dev/null``,
``/dev/fd/N`` from ``>(cmd)``) is a *stream*, written in order and never rebuilt. As root,
"replace the file" would have made ``/dev/null`` a regular file; a symlink is followed.

On resume a regular file is compared with what the journal says it must hold: equal, it is
left alone; a prefix (the crash came between journal and output), the rest is appended in
place; anything else (``--repair`` dropped entries, an ordered run's out-of-order tail), it
is rebuilt in a sibling temp file and moved over with ``os.replace``.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO

from shardflow.run.errors import OutputError

STDOUT = "-"


def describe(path: str) -> str:
    return "stdout" if path == STDOUT else path


def is_stream(path: str) -> bool:
    """Whether the output is not a regular file (a missing path becomes one)."""
    if path == STDOUT:
        return True
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        return False


def check_output(path: str, input_path: str | None) -> None:
    """Refuse an output that cannot be written, or that is the input, before anything runs."""
    if path == STDOUT:
        return
    try:
        info = os.stat(path)
    except FileNotFoundError:
        parent = Path(path).parent
        if not parent.is_dir():
            raise OutputError(path, f"directory {parent} does not exist") from None
        if not os.access(parent, os.W_OK | os.X_OK):
            raise OutputError(path, f"directory {parent} is not writable") from None
        return
    if stat.S_ISDIR(info.st_mode):
        raise OutputError(path, "is a directory")
    if not os.access(path, os.W_OK):
        raise OutputError(path, "is not writable")
    if input_path is not None and input_path != STDOUT:
        try:
            same = os.path.samestat(info, os.stat(input_path))
        except FileNotFoundError:
            same = False
        if same:
            raise OutputError(path, f"is the input ({input_path}); writing results over the "
                              "input would destroy it")


class OutputWriter:
    """Appends result lines to the output, buffered; ``flush`` hands them to the OS.

    A failed write raises :class:`OSError` whose ``filename`` is the output (``EPIPE``: the
    reader went away; ``ENOSPC``/``EFBIG``/``EIO``: the disk), so the coordinator can stop
    the run and the run can name the file. It is raised once: the output is dead from then
    on (``error`` keeps it) and later writes are dropped -- their results are journalled
    already, and a resume writes them -- so a caller that does not stop at the first error
    cannot turn one broken pipe into a loop of failures."""

    def __init__(self, path: str, *, truncate: bool) -> None:
        self.path = path
        self.name = describe(path)
        self.error: OSError | None = None
        if path == STDOUT:
            self._stream: IO[bytes] = sys.stdout.buffer
            self._owned = False
            return
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
        except OSError as exc:
            raise OutputError(path, exc.strerror or str(exc)) from None
        if truncate and stat.S_ISREG(os.fstat(fd).st_mode):
            os.ftruncate(fd, 0)
        self._stream = open(fd, "ab")  # noqa: SIM115 - closed by close()
        self._owned = True

    def write(self, line: bytes) -> None:
        if self.error is None:
            try:
                self._stream.write(line + b"\n")
            except OSError as exc:
                raise self._error(exc) from None

    def write_many(self, lines: list[bytes]) -> None:
        if self.error is None:
            try:
                self._stream.write(b"\n".join(lines) + b"\n")
            except OSError as exc:
                raise self._error(exc) from None

    def flush(self) -> None:
        if self.error is None:
            try:
                self._stream.flush()
            except OSError as exc:
                raise self._error(exc) from None

    def _error(self, exc: OSError) -> OSError:
        self.error = OSError(exc.errno, exc.strerror, self.name)
        return self.error

    def close(self) -> None:
        """Flush and close; after a failed write, drop what could not be written (the error
        was raised already) and, for stdout, stop Python from trying again at exit."""
        if self.error is not None:
            self._discard()
            return
        self.flush()
        if self._owned:
            self._stream.close()

    def _discard(self) -> None:
        if not self._owned:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        with contextlib.suppress(OSError):
            self._stream.close()


def reconcile(path: Path, expected: Callable[[], Iterator[bytes]]) -> str:
    """Make the regular file ``path`` hold exactly the lines ``expected()`` yields; returns
    what was done: ``"unchanged"``, ``"appended"`` or ``"rebuilt"``. Streams both, in bounded
    memory (``expected`` is called again for a rebuild)."""
    lines = expected()
    with open(path, "rb") as current:
        agreed = 0
        for line in lines:
            want = line + b"\n"
            have = current.read(len(want))
            if have == want:
                agreed += len(want)
                continue
            if want.startswith(have) and not current.read(1):
                return _append(path, agreed, want, lines)
            break
        else:
            if not current.read(1):
                return "unchanged"
    _rebuild(path, expected())
    return "rebuilt"


def _append(path: Path, agreed: int, first: bytes, rest: Iterable[bytes]) -> str:
    with open(path, "r+b") as fh:
        fh.truncate(agreed)
        fh.seek(agreed)
        fh.write(first)
        for line in rest:
            fh.write(line + b"\n")
    return "appended"


def _rebuild(path: Path, lines: Iterable[bytes]) -> None:
    path = Path(os.path.realpath(path))  # a symlinked output stays a link to its file
    mode = stat.S_IMODE(os.stat(path).st_mode)
    tmp = path.with_name(f".{path.name}.shardflow-rebuild")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with open(fd, "wb") as fh:
        for line in lines:
            fh.write(line + b"\n")
    os.replace(tmp, path)
