"""The ``>>>`` examples in the security modules' docstrings run and give what they show (so they cannot drift
from the code they document)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = (
    "claude_force.security.classifier",
    "claude_force.security.injection",
    "claude_force.security.normalize",
    "claude_force.security.prefilter",
    "claude_force.security.sanitize",
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), verbose=False, report=False)
    assert result.attempted > 0
    assert result.failed == 0
