"""Limits and runs that do not fit: a ``--limit`` or ``[limits]`` entry that names no step's
limit is most likely a typo, and it does nothing -- say so instead of accepting it silently;
a step's limit that the run gives no size is what ``run`` refuses, and ``validate`` says so
before."""

from __future__ import annotations

import logging

from shardflow._text import closest
from shardflow.batch.config import RunConfig
from shardflow.errors import ValidationProblem, WorkflowValidationError
from shardflow.model.definition import WorkflowDefinition
from shardflow.model.plan import check_limits, iter_steps, step_limits

log = logging.getLogger("shardflow")


def warn_unused_limits(definition: WorkflowDefinition, config: RunConfig) -> None:
    """Log a warning for each configured limit or rate limit no step of ``definition`` uses."""
    steps = [step for node in definition.steps.values() for step in iter_steps(node)]
    used = {name for step in steps for name in step_limits(step)}
    rated = {step.rate_limit for step in steps if step.rate_limit}
    for kind, names, known in (("limit", config.limits, used), ("rate limit", config.rate_limits, rated)):
        for name in sorted(set(names) - known):
            uses = f"the steps use: {', '.join(sorted(known))}" if known else f"its steps use no {kind}"
            meant = closest(name, known)
            if meant:
                uses += f"; did you mean {meant!r}?"
            log.warning("%s %r is used by no step of %s (%s); it has no effect",
                        kind, name, definition.name, uses)


def limit_problems(definition: WorkflowDefinition, config: RunConfig) -> list[ValidationProblem]:
    """What ``run`` would refuse with these limits: each step's limit or rate limit that has
    no size (the same check, :func:`~shardflow.model.plan.check_limits`, as ``run``)."""
    try:
        check_limits(definition.plan, config.limits, config.rate_limits)
    except WorkflowValidationError as exc:
        return exc.problems
    return []
