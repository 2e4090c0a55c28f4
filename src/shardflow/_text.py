"""Wording shared by every message: counts with the right noun, and "did you mean" hints.

Messages are read by people who just made a typo or want a number: "1 problem", not
"1 problem(s)"; "no attribute 'workflw' (did you mean 'workflow'?)", not a bare refusal.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``1 instance``, ``2 instances``, ``1200 instances`` (``many`` for irregular nouns)."""
    return f"{count} {noun if count == 1 else many or noun + 's'}"


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate closest to ``word``, or ``None`` when none is close (difflib's ratio
    >= 0.6, as Python's own NameError hints)."""
    close = difflib.get_close_matches(word, [c for c in candidates if c != word], n=1)
    return close[0] if close else None


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``" (did you mean 'workflow'?)"`` for the candidate closest to ``word``, or ``""``."""
    close = closest(word, candidates)
    return f" (did you mean {close!r}?)" if close else ""
