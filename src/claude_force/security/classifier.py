"""A linear n-gram classifier for prompt injection, shipped as data beside the rules.

The rules (:mod:`claude_force.security.injection`) recognise what an injection *says*: override phrases, template
tokens, encodings. What they miss are jailbreaks that say it in their own words: long role-play set-ups, persona
prompts, "hypothetical" framings. This detector scores the whole text instead: a logistic regression over the
words and word pairs of the normalised text (the same normalisation as the rules), with weights learned from the
labelled evaluation set's ``dev`` split plus benign-only text (docstrings, README sections and natural-language
requests written for training), by ``benchmarks/data/injection/train_classifier.py``. It never saw the
``heldout``, ``external`` or ``authored_nl`` splits.

The model is data (``classifier.json``): a bias, a threshold and one weight per feature (a word, or two words
joined by a space). A text's score is ``sigmoid(bias + sum(weights of its features) / sqrt(count))`` over the
distinct features it holds that the model knows; it is detected when the score reaches the threshold and it holds at
least ``min_known_features`` known features (a short text is left to the rules). Nothing in
the file is executed or compiled: a tampered file can change verdicts, not run code.

Example::

    >>> detector = LinearDetector()
    >>> detector.scan("Fix the flaky retry test in tests/test_retry.py").detected
    False
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from claude_force.security.normalize import bound_text, normalize
from claude_force.security.verdict import Verdict

__all__ = ["LinearDetector", "LinearModel", "normalized_features", "text_features"]

#: Words (letters and digits, an inner apostrophe allowed) and the punctuation that chat templates are made of.
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)?|[\[\]{}<>|#*=:]")
#: Only the first and last this many characters are read: the start and end of a prompt carry its framing.
DEFAULT_MAX_CHARS = 4096
RULE_ID = "classifier.linear"


def text_features(text: str, *, max_chars: int = DEFAULT_MAX_CHARS) -> set[str]:
    """The distinct features of ``text``: its normalised tokens and adjacent token pairs (``"a b"``).

    Training and scanning both call this, so a model always sees features made the same way.
    """
    return normalized_features(normalize(bound_text(text, max_chars)))


def normalized_features(normalized: str) -> set[str]:
    """:func:`text_features` of a text already normalised (and bounded): its tokens and adjacent token pairs."""
    tokens = _TOKEN.findall(normalized)
    features = set(tokens)
    features.update(f"{a} {b}" for a, b in itertools.pairwise(tokens))
    return features


@dataclass(frozen=True, slots=True)
class LinearModel:
    """A validated ``classifier.json``: weights per feature, bias, threshold, scan bound and provenance."""

    weights: Mapping[str, float]
    bias: float
    threshold: float
    max_chars: int = DEFAULT_MAX_CHARS
    min_known_features: int = 0
    version: int = 1
    training: Mapping[str, Any] | None = None

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> LinearModel:
        """Build from a parsed model document; raises ``ValueError`` on any inconsistency."""
        if doc.get("kind") != "linear-ngram":
            raise ValueError(f"unknown classifier kind {doc.get('kind')!r}")
        raw = doc.get("features")
        if not isinstance(raw, dict) or not raw:
            raise ValueError("classifier without features")
        weights: dict[str, float] = {}
        for feature, weight in raw.items():
            w = float(weight)
            if not math.isfinite(w):
                raise ValueError(f"feature {feature!r}: weight is not finite")
            weights[str(feature)] = w
        bias = float(doc.get("bias", 0.0))
        threshold = float(doc.get("threshold", 0.5))
        if not math.isfinite(bias):
            raise ValueError("bias is not finite")
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        max_chars = int(doc.get("max_chars", DEFAULT_MAX_CHARS))
        if max_chars < 1:
            raise ValueError("max_chars must be positive")
        min_known = int(doc.get("min_known_features", 0))
        if min_known < 0:
            raise ValueError("min_known_features must not be negative")
        training = doc.get("training")
        return cls(
            weights=weights,
            bias=bias,
            threshold=threshold,
            max_chars=max_chars,
            min_known_features=min_known,
            version=int(doc.get("version", 1)),
            training=dict(training) if isinstance(training, dict) else None,
        )

    @classmethod
    def load(cls, path: str | Path | None = None) -> LinearModel:
        """The model file at ``path``, or the packaged ``classifier.json``."""
        if path is None:
            raw = resources.files("claude_force.security").joinpath("classifier.json").read_text("utf-8")
        else:
            raw = Path(path).read_text(encoding="utf-8")
        return cls.from_document(json.loads(raw))

    def score(self, features: set[str]) -> float:
        """The probability-like score in (0, 1) of a feature set."""
        return self.evaluate(features)[0]

    def evaluate(self, features: set[str]) -> tuple[float, bool]:
        """``(score, detected)``: detected needs the threshold *and* ``min_known_features`` known features (a
        short text gives the model too little to go on; the rules judge it alone)."""
        weights = self.weights
        known = [weights[f] for f in features if f in weights]
        z = self.bias + (math.fsum(known) / math.sqrt(len(known)) if known else 0.0)
        score = 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))
        return score, score >= self.threshold and len(known) >= self.min_known_features


class LinearDetector:
    """Scores a whole text with the packaged (or a given) :class:`LinearModel`.

    Example::

        detector = LinearDetector()                                  # packaged classifier.json
        detector = LinearDetector(model=LinearModel.load("mine.json"))
        verdict = detector.scan(task_text)       # Verdict(detected, score, ("classifier.linear",) if detected)
    """

    __slots__ = ("_model",)

    def __init__(self, *, model: LinearModel | None = None) -> None:
        self._model = model

    @property
    def model(self) -> LinearModel:
        """The model in use, loaded on first use (agents that run with policy ``off`` never pay for it)."""
        if self._model is None:
            self._model = LinearModel.load()
        return self._model

    def __repr__(self) -> str:
        if self._model is None:
            return "LinearDetector(model=<packaged, not loaded>)"
        m = self._model
        return f"LinearDetector(features={len(m.weights)}, threshold={m.threshold}, version={m.version})"

    def scan(self, text: str) -> Verdict:
        if not isinstance(text, str):
            raise TypeError(f"scan() needs str, got {type(text).__name__}")
        model = self.model
        return self._verdict(text_features(text, max_chars=model.max_chars))

    def scan_normalized(self, text: str, normalized: str) -> Verdict:
        """:meth:`scan` of ``text`` given ``normalized``, its :func:`~claude_force.security.normalize.normalize`
        with the packaged look-alike table, so a caller that has it already does not normalise twice. Used only
        when the model's bound leaves ``text`` whole; otherwise the same as :meth:`scan`."""
        if len(text) > 2 * self.model.max_chars:
            return self.scan(text)
        return self._verdict(normalized_features(normalized))

    def scan_window(self, normalized: str) -> Verdict:
        """The verdict on a slice of a normalised text, as it stands (no bound, no normalising): what
        :class:`~claude_force.security.injection.DefaultDetector` asks about the windows of a long text."""
        return self._verdict(normalized_features(normalized))

    def _verdict(self, features: set[str]) -> Verdict:
        score, detected = self.model.evaluate(features)
        return Verdict(detected=detected, score=score, rules=(RULE_ID,) if detected else ())
