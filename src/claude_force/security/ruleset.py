"""The rule file's model: :class:`Rule`, :class:`DecodeLimits` and :class:`RuleSet`, parsed and validated.

A rule file (the packaged ``rules.json``, or one of your own given to ``RuleSet.load(path)``) is data: each rule
has an id, a weight, a description and its patterns; ``defines`` are named pattern pieces that patterns use as
``{NAME}``. :meth:`RuleSet.from_document` checks every field and compiles every pattern, raising ``ValueError``
on any inconsistency. Matching is :class:`~claude_force.security.injection.RuleDetector`'s job.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Set
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from claude_force.security.normalize import confusables_table, load_rules_document, strip_latin_marks
from claude_force.security.prefilter import Clauses, has_any, implies, literals_for, may_match

__all__ = ["TARGETS", "DecodeLimits", "Rule", "RuleSet"]

#: Characters scanned from each end of a text when a rule file does not say (covers the default max_task_chars).
DEFAULT_MAX_SCAN_CHARS = 204_800
_DEFINE = re.compile(r"\{([A-Z][A-Z0-9_]*)\}")
#: The views a rule can match: the normalised text, or the text as given.
TARGETS = frozenset({"normalized", "raw"})
_EFFECTS = frozenset({"raise", "lower"})


@dataclass(frozen=True, slots=True)
class Rule:
    """One named signal.

    ``min_count`` > 1 means the patterns must match that many non-overlapping places in total (one phrase that
    several patterns match counts once). ``skip_if_ascii`` skips pure-ASCII text. ``effect`` is ``"raise"``
    (evidence of an injection) or ``"lower"`` (a context cue that scales the score down). ``needs`` holds each
    pattern's necessary literals (derived from the pattern when not given, see
    :mod:`claude_force.security.prefilter`): a pattern whose literals are absent is not run, which never changes
    whether the rule matches.

    ``requires`` is a cheap pre-filter: the patterns only run if one of these substrings is in the text. Being
    hand-written, it could miss a spelling a pattern accepts, so it is kept only where ``needs`` prove it: for
    every pattern, some clause of its literals each contain one of ``requires`` (see
    :func:`~claude_force.security.prefilter.implies`). Otherwise the rule is built with ``requires=()`` and goes by
    ``needs`` alone, so ``requires`` never changes whether the rule matches either.
    """

    id: str
    weight: float
    description: str
    patterns: tuple[re.Pattern[str], ...]
    target: str = "normalized"
    min_count: int = 1
    requires: tuple[str, ...] = ()
    skip_if_ascii: bool = False
    effect: str = "raise"
    needs: tuple[Clauses, ...] = ()

    def __post_init__(self) -> None:
        if not self.needs:
            object.__setattr__(self, "needs", tuple(literals_for(p) for p in self.patterns))
        elif len(self.needs) != len(self.patterns):
            raise ValueError(
                f"rule {self.id!r}: {len(self.needs)} prefilters for {len(self.patterns)} patterns"
            )
        if self.requires and not all(implies(need, self.requires) for need in self.needs):
            # Not implied by what the patterns need (or not provably): a gate that could reject a match.
            object.__setattr__(self, "requires", ())

    def matches(self, text: str, present: Set[str] | None = None) -> bool:
        """Whether the rule matches ``text``; ``present`` is what a :class:`LiteralIndex` of the rule's literals
        found in ``text``, if the caller has it (the answer is the same, only cheaper)."""
        if self.skip_if_ascii and text.isascii():
            return False
        if self.requires and not has_any(self.requires, text, present):
            return False
        if self.min_count <= 1:
            for pattern, need in zip(self.patterns, self.needs, strict=True):
                if (not need or may_match(need, text, present)) and pattern.search(text) is not None:
                    return True
            return False
        candidates = [
            p for p, need in zip(self.patterns, self.needs, strict=True) if may_match(need, text, present)
        ]
        spans = sorted((m.start(), m.end()) for p in candidates for m in p.finditer(text))
        seen, end = 0, -1
        for start, stop in spans:  # greedy count of places that do not overlap
            if start >= end:
                seen, end = seen + 1, stop
                if seen >= self.min_count:
                    return True
            else:
                end = min(end, stop)
        return False


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """Bounds on decode-and-rescan: depth, number and size of blobs, and what counts as decoded text.

    ``max_blobs`` is the most decoded texts scanned per level: one per whole-text decoder that fires, one for
    all the base64 blobs together and one for all the hex blobs (ten kinds in all, so 10 never skips one).
    """

    max_depth: int = 2
    max_blobs: int = 10
    max_blob_chars: int = 16384
    min_base64_chars: int = 24
    min_hex_chars: int = 32
    min_printable_ratio: float = 0.9
    base64_id: str = "encoded.base64"
    hex_id: str = "encoded.hex"
    tags_id: str = "encoded.unicode_tags"
    morse_id: str = "encoded.morse"
    rot13_id: str = "encoded.rot13"
    leet_id: str = "encoded.leetspeak"
    spaced_id: str = "encoded.spaced_letters"
    split_id: str = "encoded.split_words"
    entities_id: str = "encoded.html_entities"
    markup_id: str = "encoded.markup_in_words"


@dataclass(frozen=True, slots=True)
class RuleSet:
    """A validated rule file: rules, threshold, scan bound, decode limits and the look-alike table.

    ``min_lower_factor`` bounds what context cues can do: the score is never scaled below that fraction.
    """

    rules: tuple[Rule, ...]
    threshold: float
    max_scan_chars: int
    decode: DecodeLimits
    confusables: Mapping[int, str]
    version: int = 1
    min_lower_factor: float = 0.6

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> RuleSet:
        """Build from a parsed rule document; raises ``ValueError`` on any inconsistency."""
        defines = {str(k): str(v) for k, v in dict(doc.get("defines", {})).items()}
        rules: list[Rule] = []
        seen: set[str] = set()
        for raw in doc.get("rules", []):
            rule = _parse_rule(raw, defines)
            if rule.id in seen:
                raise ValueError(f"duplicate rule id {rule.id!r}")
            seen.add(rule.id)
            rules.append(rule)
        threshold = float(doc.get("threshold", 0.5))
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        max_chars = int(doc.get("max_scan_chars", DEFAULT_MAX_SCAN_CHARS))
        if max_chars < 1:
            raise ValueError("max_scan_chars must be positive")
        floor = float(doc.get("min_lower_factor", 0.6))
        if not 0.0 < floor <= 1.0:
            raise ValueError(f"min_lower_factor must be in (0, 1], got {floor}")
        dec = dict(doc.get("decoders", {}))
        ids = dict(dec.pop("ids", {}))
        limits = DecodeLimits(
            **{k: v for k, v in dec.items() if k in DecodeLimits.__dataclass_fields__},
            base64_id=str(ids.get("base64", "encoded.base64")),
            hex_id=str(ids.get("hex", "encoded.hex")),
            tags_id=str(ids.get("tags", "encoded.unicode_tags")),
            morse_id=str(ids.get("morse", "encoded.morse")),
            rot13_id=str(ids.get("rot13", "encoded.rot13")),
            leet_id=str(ids.get("leetspeak", "encoded.leetspeak")),
            spaced_id=str(ids.get("spaced_letters", "encoded.spaced_letters")),
            split_id=str(ids.get("split_words", "encoded.split_words")),
            entities_id=str(ids.get("html_entities", "encoded.html_entities")),
            markup_id=str(ids.get("markup_in_words", "encoded.markup_in_words")),
        )
        return cls(
            rules=tuple(rules),
            threshold=threshold,
            max_scan_chars=max_chars,
            decode=limits,
            confusables=confusables_table(dict(doc.get("confusables", {}))),
            version=int(doc.get("version", 1)),
            min_lower_factor=floor,
        )

    @classmethod
    def load(cls, path: str | Path | None = None) -> RuleSet:
        """The rule file at ``path``, or the packaged ``rules.json``."""
        if path is None:
            return cls.from_document(load_rules_document())
        return cls.from_document(json.loads(Path(path).read_text(encoding="utf-8")))


def _expand(pattern: str, defines: Mapping[str, str]) -> str:
    for _ in range(5):  # defines may use defines; bounded
        expanded = _DEFINE.sub(lambda m: defines.get(m.group(1), m.group(0)), pattern)
        if expanded == pattern:
            break
        pattern = expanded
    return pattern


def _parse_rule(raw: Any, defines: Mapping[str, str]) -> Rule:
    if not isinstance(raw, dict):
        raise ValueError("each rule must be an object")
    rid = str(raw.get("id", ""))
    if not rid:
        raise ValueError("rule without an id")
    weight = float(raw.get("weight", 0))
    if not 0.0 < weight <= 1.0:
        raise ValueError(f"rule {rid!r}: weight must be in (0, 1], got {weight}")
    target = str(raw.get("target", "normalized"))
    if target not in TARGETS:
        raise ValueError(f"rule {rid!r}: unknown target {target!r}")
    effect = str(raw.get("effect", "raise"))
    if effect not in _EFFECTS:
        raise ValueError(f"rule {rid!r}: unknown effect {effect!r}")
    sources = raw.get("patterns", [])
    if "pattern" in raw:
        sources = [raw["pattern"], *sources]
    if not sources:
        raise ValueError(f"rule {rid!r}: no patterns")
    # normalize() strips the marks on Latin letters, so a pattern for the normalised text is read without them too
    # ("jesteś" matches as "jestes"); a raw-text pattern is taken as written.
    fold = strip_latin_marks if target == "normalized" else str
    try:
        patterns = tuple(re.compile(fold(_expand(str(s), defines))) for s in sources)
    except re.error as exc:
        raise ValueError(f"rule {rid!r}: bad pattern: {exc}") from None
    return Rule(
        id=rid,
        weight=weight,
        description=str(raw.get("description", "")),
        patterns=patterns,
        target=target,
        min_count=max(1, int(raw.get("min_count", 1))),
        requires=tuple(fold(str(r)) for r in raw.get("requires", ())),
        skip_if_ascii=bool(raw.get("skip_if_ascii", False)),
        effect=effect,
    )
