"""Process-level tuning for processes that run many instances at once: the garbage collector.

Why: with thousands of instances in flight, CPython's generational GC runs a young collection
every 700 allocations and each one walks every live coroutine, task and context of every
instance in flight. Measured on the notify fork/join at 5,000 in flight, the collector took
12-43 % of the run (docs/ARCHITECTURE.md, "Measured facts"; ``docs/PERFORMANCE.md``). Start-up objects
(modules, classes, the compiled plan) never die, so they need not be scanned at all.

:func:`tune_gc` is meant to be called once per process, after start-up (imports done, the
workflow loaded) and before the first instance runs. The batch workers call it; an embedding
service running :class:`~shardflow.LocalExecutionEngine` under load may call it too.
:func:`restore_gc` undoes it (tests and benchmarks use it to leave the process as it was).
"""

from __future__ import annotations

import gc
from dataclasses import dataclass

DEFAULT_THRESHOLDS = (50_000, 50, 100)
"""Young collections every 50,000 net allocations instead of 700. The engine's per-instance
cycles (tasks, exceptions with tracebacks) are still reclaimed by young collections, so memory
stays bounded; there are just ~70x fewer of them."""


@dataclass(frozen=True, slots=True)
class GcSettings:
    """What :func:`tune_gc` replaced: hand it to :func:`restore_gc` to undo the tuning."""

    thresholds: tuple[int, int, int]
    froze: bool


def tune_gc(
    thresholds: tuple[int, int, int] = DEFAULT_THRESHOLDS, *, freeze: bool = True
) -> GcSettings:
    """Tune the collector for throughput; returns the previous settings.

    ``freeze`` collects once and then moves every object alive now into the permanent
    generation (:func:`gc.freeze`), so later collections skip the start-up heap entirely.
    ``thresholds`` replace :func:`gc.get_threshold` (generation 0, 1 and 2).
    """
    previous = gc.get_threshold()
    if freeze:
        gc.collect()
        gc.freeze()
    gc.set_threshold(*thresholds)
    return GcSettings(thresholds=previous, froze=freeze)


def restore_gc(settings: GcSettings) -> None:
    """Undo :func:`tune_gc`: the previous thresholds, and frozen objects back in the heap."""
    gc.set_threshold(*settings.thresholds)
    if settings.froze:
        gc.unfreeze()
