"""What every detector returns, the protocol a detector implements, and how several verdicts combine.

A detector is anything with ``scan(text) -> Verdict``: the packaged rules
(:class:`~claude_force.security.injection.RuleDetector`), the packaged classifier
(:class:`~claude_force.security.classifier.LinearDetector`), or a model-based one of your own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = ["CLEAN", "CompositeDetector", "Detector", "Verdict", "combine"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of a scan: ``detected`` when ``score`` reached the threshold; ``rules`` that matched."""

    detected: bool
    score: float
    rules: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The JSON form stored in ``CallContext.injection`` and ``AgentResult.metadata``."""
        return {"detected": self.detected, "score": round(self.score, 4), "rules": list(self.rules)}


CLEAN = Verdict(detected=False, score=0.0, rules=())


@runtime_checkable
class Detector(Protocol):
    """Anything that scores a text for prompt injection (rule-based, a classifier, an LLM judge)."""

    def scan(self, text: str) -> Verdict: ...


class CompositeDetector:
    """Several detectors as one: detected if any detects; the score is the highest; rules are merged.

    Example::

        detector = CompositeDetector(detectors=[RuleDetector(), MyClassifier()])
    """

    __slots__ = ("_detectors",)

    def __init__(self, *, detectors: Sequence[Detector]) -> None:
        if not detectors:
            raise ValueError("CompositeDetector needs at least one detector")
        self._detectors = tuple(detectors)

    def __repr__(self) -> str:
        return f"CompositeDetector(detectors={list(self._detectors)!r})"

    def scan(self, text: str) -> Verdict:
        return combine([d.scan(text) for d in self._detectors])


def combine(verdicts: Sequence[Verdict]) -> Verdict:
    """Merge verdicts: any detection wins, the maximum score, rule ids in first-seen order."""
    if not verdicts:
        return CLEAN
    rules: dict[str, None] = {}
    for v in verdicts:
        rules.update(dict.fromkeys(v.rules))
    return Verdict(
        detected=any(v.detected for v in verdicts),
        score=max(v.score for v in verdicts),
        rules=tuple(rules),
    )
