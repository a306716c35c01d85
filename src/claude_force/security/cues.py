"""Context cues: which of the cues a text matched count, and how far they lower its score.

A cue (a rule with ``"effect": "lower"``: a text that reports on attacks, a test case) lowers a score only when it
matches near a rule that raised it, in a text longer than the detector's ``context_chars``; together the cues
never scale a score below the rule file's ``min_lower_factor``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

from claude_force.security.normalize import has_native_letters, normalize
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

    Positions are compared in the normalised text: raw-view rules' matches are mapped onto it (see
    :func:`to_normalized`), since normalising can shrink the text (stripped invisible characters, marks) or grow
    it (NFKC turns U+FDFA into 18 characters), and a cue must not look near an attack it is far from. A detection
    made only by a decoder has no position in this text, so no cue lowers it.
    """
    found = {r.id: _matches(r, views[r.target]) for r in matched}
    raw = sorted({p for r in matched if r.target != "normalized" for p in found[r.id]})
    mapped = to_normalized(views["raw"], raw, table) if raw else {}
    at = {
        r.id: [mapped[p] for p in found[r.id]] if r.target != "normalized" else found[r.id] for r in matched
    }
    raising = [q for r in matched if r.effect != "lower" for q in at[r.id]]
    if not raising:
        return {}
    return {
        r.id: r.weight
        for r in matched
        if r.effect == "lower" and any(abs(c - q) <= window for c in at[r.id] for q in raising)
    }


def _matches(rule: Rule, text: str) -> list[int]:
    out: list[int] = []
    for pattern in rule.patterns:
        for m in itertools.islice(pattern.finditer(text), MAX_POSITIONS):
            out.append(m.start())
    return out


#: Characters of the normalised text so far put in front of each piece (see :func:`to_normalized`).
_CONTEXT = 8


def to_normalized(raw: str, offsets: Sequence[int], table: Mapping[int, str]) -> dict[int, int]:
    """Each of the sorted raw ``offsets`` as an offset in ``normalize(raw)``, in one pass over the text.

    The text is normalised piece by piece between the offsets, each piece behind the last few characters of what
    came before (already normalised, so normalising them again keeps them as they are): a combining mark at the
    start of a piece is then stripped as it is in the whole text, where its Latin letter is in the piece before
    (perhaps behind a stripped invisible character), and spaces collapse across the cut.
    """
    out: dict[int, int] = {}
    length = last = 0
    tail = ""
    # Decided for the whole text, as normalize() does, not per piece.
    native = has_native_letters(raw, table=table)
    for p in offsets:
        piece = raw[last:p]
        if piece:
            context = normalize(tail, table=table, native=native) if tail else ""
            grown = normalize(tail + piece, table=table, native=native)
            length += max(0, len(grown) - len(context))
            tail = grown[-_CONTEXT:]
        last = p
        out[p] = length
    return out
