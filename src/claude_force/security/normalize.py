"""Text normalisation for injection screening: one canonical form to match rules against.

``normalize(text)`` applies, in order:

1. NFKC (full-width, ligatures and mathematical letters become plain ones: ``ｉｇｎｏｒｅ`` -> ``ignore``);
2. removal of invisible characters: zero-width, bidi controls, tag characters, variation selectors, soft hyphen;
3. case-folding, then NFKC again (case-folding can leave non-NFKC text);
4. mapping of look-alike letters (Cyrillic/Greek/small capitals, curly quotes) to ASCII, from the
   ``confusables`` table of ``rules.json`` (then NFKC once more);
5. whitespace collapse: a run of whitespace becomes one ``"\\n"`` if it holds a line break, else one space.

The result is only ever matched against; the task itself is never rewritten. ``normalize`` is idempotent:
``normalize(normalize(t)) == normalize(t)`` (checked by the fuzz tests). Example::

    >>> normalize("Ｉgn\\u200bore  ALL\\n\\n previous")
    'ignore all\\nprevious'
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from collections.abc import Mapping
from importlib import resources
from typing import Any

__all__ = ["INVISIBLE", "decode_tag_characters", "load_rules_document", "normalize", "strip_invisible"]

#: Characters that render as nothing (or reorder text) and are removed before matching.
INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f"
    "\u3164\ufe00-\ufe0f\ufeff\uffa0\U000e0000-\U000e007f\U000e0100-\U000e01ef]"
)
_LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
_WHITESPACE = re.compile(r"\s+")
_TAGS = re.compile("[\U000e0020-\U000e007e]+")


@functools.lru_cache(maxsize=1)
def load_rules_document() -> dict[str, Any]:
    """The packaged ``rules.json`` (parsed once)."""
    text = resources.files("claude_force.security").joinpath("rules.json").read_text(encoding="utf-8")
    doc = json.loads(text)
    if not isinstance(doc, dict):
        raise ValueError("rules.json must hold a JSON object")
    return doc


@functools.lru_cache(maxsize=1)
def _default_table() -> dict[int, str]:
    return confusables_table(load_rules_document().get("confusables", {}))


def confusables_table(mapping: Mapping[str, str]) -> dict[int, str]:
    """A ``str.translate`` table from a ``{"look-alike": "ascii"}`` mapping (keys must be one character)."""
    table: dict[int, str] = {}
    for src, dst in mapping.items():
        if len(src) != 1:
            raise ValueError(f"confusable key must be one character, got {src!r}")
        table[ord(src)] = dst
    return table


def strip_invisible(text: str) -> str:
    """Remove zero-width, bidi-control, tag and variation-selector characters."""
    return INVISIBLE.sub("", text)


def _collapse(match: re.Match[str]) -> str:
    return "\n" if any(ch in _LINE_BREAKS for ch in match.group()) else " "


def normalize(text: str, *, table: Mapping[int, str] | None = None) -> str:
    """The canonical matching form of ``text`` (see the module docstring for the steps)."""
    table = _default_table() if table is None else table
    out = unicodedata.normalize("NFKC", text)
    out = strip_invisible(out)
    out = unicodedata.normalize("NFKC", out.casefold())
    # NFKC again after mapping: an ASCII letter can compose with a following combining mark.
    out = strip_invisible(unicodedata.normalize("NFKC", out.translate(table)))
    return _WHITESPACE.sub(_collapse, out).strip()


def decode_tag_characters(text: str) -> str | None:
    """The ASCII hidden in Unicode tag characters (U+E0020..U+E007E), or None if there is none."""
    runs = _TAGS.findall(text)
    if not runs:
        return None
    return " ".join("".join(chr(ord(ch) - 0xE0000) for ch in run) for run in runs)
