"""Security helpers: injection screening, log sanitizing, secret redaction, confined paths.

``scan(text) -> Verdict`` screens a task for prompt injection with the packaged rules and classifier (or any
:class:`Detector`); ``safe()``/``redact()``/``register_secret()`` keep logs single-line and secret-free.
"""

from claude_force.security.classifier import LinearDetector, LinearModel
from claude_force.security.injection import (
    CompositeDetector,
    DefaultDetector,
    Detector,
    RuleDetector,
    RuleSet,
    Verdict,
    scan,
)
from claude_force.security.sanitize import redact, register_secret, safe

__all__ = [
    "CompositeDetector",
    "DefaultDetector",
    "Detector",
    "LinearDetector",
    "LinearModel",
    "RuleDetector",
    "RuleSet",
    "Verdict",
    "redact",
    "register_secret",
    "safe",
    "scan",
]
