"""A definition that has run (its plan compiled, with generated code and read-only tables)
can still be copied and pickled, as any dataclass of plain values can; the copy compiles its
own plan."""

from __future__ import annotations

import asyncio
import copy
import pickle

from shardflow.engine.runner import InstanceRunner
from shardflow.examples import notify


def _channels(definition: object) -> list[str]:
    outcome = asyncio.run(InstanceRunner(definition).run("1", {"id": 1}))  # type: ignore[arg-type]
    return outcome.context["channels"]  # type: ignore[no-any-return]


def test_a_compiled_definition_deep_copies_and_the_copy_runs() -> None:
    original = notify.build("copied")
    assert _channels(original) == ["email", "slack", "sms"]  # compiles its plan
    clone = copy.deepcopy(original)
    assert clone.plan is not original.plan
    assert _channels(clone) == ["email", "slack", "sms"]
    assert _channels(original) == ["email", "slack", "sms"]


def test_a_compiled_definition_pickles_without_its_plan() -> None:
    original = notify.build("pickled")
    original.plan  # noqa: B018 - compile it
    restored = pickle.loads(pickle.dumps(original))
    assert restored.name == "pickled" and restored._plan is None
    assert _channels(restored) == ["email", "slack", "sms"]
