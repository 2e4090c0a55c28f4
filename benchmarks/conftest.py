"""Fixtures shared by the benchmarks (run explicitly: ``python -m pytest benchmarks/...``)."""

from __future__ import annotations

import pytest

Rates = dict[tuple[str, int, str], float]
Ratios = dict[tuple[int, str], tuple[dict[str, float], dict[str, float]]]
_RATES = pytest.StashKey[Rates]()
_RATIOS = pytest.StashKey[Ratios]()


@pytest.fixture
def rates(request: pytest.FixtureRequest) -> Rates:
    """instances/s the engine benchmarks measured, by (subject, in-flight, GC mode)."""
    return request.config.stash.setdefault(_RATES, {})


@pytest.fixture
def ratios(request: pytest.FixtureRequest) -> Ratios:
    """What the engine's ratio tests measured, by (in-flight, GC mode): (instances/s by
    subject, ratio to the baseline by subject)."""
    return request.config.stash.setdefault(_RATIOS, {})


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            config: pytest.Config) -> None:
    """The engine benchmark's figures: instances/s per subject and ratios to the baseline."""
    found = config.stash.get(_RATES, {})
    write = terminalreporter.write_line
    if found:
        terminalreporter.section("engine benchmarks: instances/s (median round)")
        for in_flight, mode in sorted({(k[1], k[2]) for k in found}):
            base = found.get(("baseline", in_flight, mode))
            parts = []
            for subject in ("engine", "runner", "baseline"):
                rate = found.get((subject, in_flight, mode))
                if rate is None:
                    continue
                ratio = f" ({rate / base:.2f}x)" if base and subject != "baseline" else ""
                parts.append(f"{subject} {rate:,.0f}{ratio}")
            write(f"in_flight={in_flight:>5} gc={mode:<7}  " + "   ".join(parts))
    measured = config.stash.get(_RATIOS, {})
    if measured:
        terminalreporter.section("engine ratio tests: subjects taking turns (median)")
        for (flight, gc_mode), (per_second, to_base) in sorted(measured.items()):
            write(f"in_flight={flight:>5} gc={gc_mode:<7}  "
                  + "   ".join(f"{s} {v:,.0f}/s" for s, v in per_second.items())
                  + f"   engine/baseline {to_base['engine']:.2f}"
                  + f"   runner/baseline {to_base['runner']:.2f}")
