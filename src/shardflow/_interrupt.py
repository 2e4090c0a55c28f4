"""Ctrl-C while the ``shardflow`` command is still importing: exit 130, one line, no traceback.

Importing shardflow and the command's modules takes a noticeable fraction of a second, and a
``KeyboardInterrupt`` raised inside an import would end in Python's traceback. The package's
first statement calls :func:`quiet_while_starting`, which, in the ``shardflow`` command only
(never in a program that imports shardflow as a library, nor in a worker), makes SIGINT end
the process at once with 130; :func:`command_ready` hands SIGINT back to ``KeyboardInterrupt``
once the command's own handling is in place. Nothing has started then, so nothing is lost.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import Any

EXIT_INTERRUPTED = 130


def _is_command() -> bool:
    """Whether this process is the ``shardflow`` command (the console script, or
    ``python -m shardflow``)."""
    if os.path.basename(sys.argv[0] if sys.argv else "") == "shardflow":
        return True
    args = iter(list(getattr(sys, "orig_argv", []))[1:])
    for arg in args:
        if arg in ("-X", "-W"):  # interpreter options with a separate value
            next(args, None)
        elif arg.startswith("-m"):
            return (arg[2:] or next(args, "")) in ("shardflow", "shardflow.cli.main")
        elif arg == "-c" or not arg.startswith("-"):
            return False  # a command or a script: python runs that, not shardflow
    return False


def _exit_interrupted(signum: int, frame: Any) -> None:
    os.write(2, b"\nshardflow: interrupted; nothing ran\n")
    os._exit(EXIT_INTERRUPTED)


def quiet_while_starting() -> None:
    """In the ``shardflow`` command, SIGINT exits 130 quietly until :func:`command_ready`."""
    if _is_command() and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        with contextlib.suppress(ValueError):  # not the main thread: no command starting
            signal.signal(signal.SIGINT, _exit_interrupted)


def command_ready() -> None:
    """The command handles ``KeyboardInterrupt`` from here on."""
    if signal.getsignal(signal.SIGINT) is _exit_interrupted:
        signal.signal(signal.SIGINT, signal.default_int_handler)


quiet_while_starting()
