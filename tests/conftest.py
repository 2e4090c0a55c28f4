"""Shared fixtures: every async test runs on the default asyncio loop and on uvloop."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest
import uvloop

T = TypeVar("T")
Run = Callable[[Coroutine[Any, Any, T]], T]

# A shell that runs the suite in the background without job control (`pytest &` in a script,
# a CI step detached with `&`) hands it SIGINT *ignored*, every process it starts inherits
# that, and Python then installs no KeyboardInterrupt handler: the CLI processes the signal
# tests start would never see their Ctrl-C. Caught signals are reset on exec, ignored ones
# are not, so catching SIGINT here gives every child the default a terminal gives it.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(params=["asyncio", "uvloop"])
def loop_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def run(loop_name: str) -> Run[Any]:
    """``run(coro)`` runs a coroutine to completion on a fresh loop of the parametrised kind."""
    factory = uvloop.new_event_loop if loop_name == "uvloop" else asyncio.new_event_loop

    def runner(coro: Coroutine[Any, Any, T]) -> T:
        with asyncio.Runner(loop_factory=factory) as r:
            return r.run(coro)

    return runner
