"""Context cues: which of the cues a text matched count, and how far they lower its score.

A cue (a rule with ``"effect": "lower"``: a text that reports on attacks, a test case) lowers a score only when it
matches near a rule that raised it, in a text longer than the detector's ``context_chars``; together the cues
never scale a score below the rule file's ``min_lower_factor``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

from claude_force.security.normalize import normalize
from claude_force.security.ruleset import Rule

__all__ = ["MAX_POSITIONS", "lower_factor", "near_cues"]

#: Match positions looked at per pattern when placing cues and rules (bounds the cost on a long text).
MAX_POSITIONS = 16


def lower_factor(cues: Mapping[str, float], floor: float) -> float:
    """What ``cues`` (rule id -> weight) scale a score by: each by ``1 - weight``, together never below ``floor``."""
    if not cues:
        return 1.0
    return max(floor, math.prod(1.0 - w for w in cues.values()))


def near_cues(
    matched: Sequence[Rule], views: Mapping[str, str], window: int, table: Mapping[int, str]
) -> dict[str, float]:
    """The context cues among ``matched`` that match within ``window`` characters of a rule that raises.

    Positions are compared in the normalised text: a raw-view rule's are mapped onto it (see
    :func:`positions`), since normalising can shrink the text (stripped invisible characters) or grow it (NFKC
    turns U+FDFA into 18 characters), and a cue must not look near an attack it is far from. A detection made
    only by a decoder has no position in this text, so no cue lowers it.
    """
    raising = [q for r in matched if r.effect != "lower" for q in positions(r, views, table)]
    if not raising:
        return {}
    return {
        r.id: r.weight
        for r in matched
        if r.effect == "lower"
        and any(abs(c - q) <= window for c in positions(r, views, table) for q in raising)
    }


def positions(rule: Rule, views: Mapping[str, str], table: Mapping[int, str]) -> list[int]:
    """Where ``rule`` matches, as offsets in the normalised text.

    A raw-view match at raw offset ``p`` is placed at the length of the normalised raw text before it, built
    piece by piece between the sorted matches (one pass over the text; each piece's edges may differ from the
    whole text's by a collapsed space or so, far below any window).
    """
    text = views[rule.target]
    out: list[int] = []
    for pattern in rule.patterns:
        for m in itertools.islice(pattern.finditer(text), MAX_POSITIONS):
            out.append(m.start())
    if rule.target == "normalized" or not out:
        return out
    mapped: list[int] = []
    last = length = 0
    for p in sorted(out):
        length += len(normalize(text[last:p], table=table))
        last = p
        mapped.append(length)
    return mapped
