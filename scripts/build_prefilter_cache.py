"""Regenerate ``src/claude_force/security/prefilter.json``: the packaged rules' necessary literals, derived ahead of
time so the first scan of a process does not parse every pattern.

    .venv/bin/python scripts/build_prefilter_cache.py

Run it after editing ``rules.json``; ``tests/test_prefilter.py`` fails while the file is stale (a stale file is
still safe: a pattern it does not hold is derived at load).
"""

from __future__ import annotations

import json
from pathlib import Path

from claude_force.security import RuleSet
from claude_force.security.prefilter import CACHE_FILE, cache_document

OUT = Path(__file__).resolve().parents[1] / "src" / "claude_force" / "security" / CACHE_FILE


def main() -> None:
    patterns = [p for rule in RuleSet.load().rules for p in rule.patterns]
    doc = cache_document(patterns)
    OUT.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {OUT}: {len(doc['entries'])} patterns")


if __name__ == "__main__":
    main()
