"""Fixtures shared by the benchmarks (run explicitly: ``python -m pytest benchmarks/...``)."""

from __future__ import annotations

import pytest

Rates = dict[tuple[str, int, str], float]
_RATES = pytest.StashKey[Rates]()


@pytest.fixture
def rates(request: pytest.FixtureRequest) -> Rates:
    """instances/s measured so far in this run, keyed by (subject, in-flight, GC mode): the
    ratio test reads what the benchmarks before it measured instead of measuring again."""
    return request.config.stash.setdefault(_RATES, {})


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            config: pytest.Config) -> None:
    """A table of instances/s and of each subject's ratio to the hand-written baseline."""
    found = config.stash.get(_RATES, {})
    if not found:
        return
    write = terminalreporter.write_line
    terminalreporter.section("instances/s (median round)")
    for in_flight, mode in sorted({(k[1], k[2]) for k in found}):
        base = found.get(("baseline", in_flight, mode))
        parts = []
        for subject in ("engine", "runner", "baseline"):
            rate = found.get((subject, in_flight, mode))
            if rate is None:
                continue
            ratio = f" ({rate / base:.2f}x baseline)" if base and subject != "baseline" else ""
            parts.append(f"{subject} {rate:,.0f}{ratio}")
        write(f"in_flight={in_flight:>5} gc={mode:<7}  " + "   ".join(parts))
