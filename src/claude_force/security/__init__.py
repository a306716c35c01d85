"""Security helpers: injection screening, log sanitizing, secret redaction, confined paths.

``scan(text) -> Verdict`` screens a task for prompt injection with the packaged rules (or any
:class:`Detector`); ``safe()``/``redact()``/``register_secret()`` keep logs single-line and secret-free.
"""

from claude_force.security.injection import (
    CompositeDetector,
    Detector,
    RuleDetector,
    RuleSet,
    Verdict,
    scan,
)
from claude_force.security.sanitize import redact, register_secret, safe

__all__ = [
    "CompositeDetector",
    "Detector",
    "RuleDetector",
    "RuleSet",
    "Verdict",
    "redact",
    "register_secret",
    "safe",
    "scan",
]
