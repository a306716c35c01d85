"""The rules' literal prefilter: what it derives from a pattern is necessary for a match, the packaged rules get
filters, and screening with the filters gives exactly the verdicts of screening without them (on a sample of the
evaluation data and on generated text)."""

from __future__ import annotations

import dataclasses
import json
import re
from functools import lru_cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from claude_force.security import RuleDetector, RuleSet
from claude_force.security.normalize import normalize
from claude_force.security.prefilter import (
    CACHE_FILE,
    LiteralIndex,
    cache_document,
    has_any,
    literals_for,
    may_match,
    parse_cache,
    pattern_key,
    required_literals,
)

DATA = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "injection"


@lru_cache(maxsize=1)
def _detectors() -> tuple[RuleDetector, RuleDetector]:
    """(the packaged rules with their prefilters, the same rules with every prefilter turned off)."""
    rules = RuleSet.load()
    unfiltered = tuple(dataclasses.replace(r, needs=((),) * len(r.patterns)) for r in rules.rules)
    return RuleDetector(rules=rules), RuleDetector(rules=dataclasses.replace(rules, rules=unfiltered))


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (
            r"\bignore (?:all |the )?(?:prior|previous) instructions\b",  # few enough spellings: each is a literal
            (
                (
                    "ignore prior instructions",
                    "ignore previous instructions",
                    "ignore all prior instructions",
                    "ignore the prior instructions",
                    "ignore all previous instructions",
                    "ignore the previous instructions",
                ),
            ),
        ),
        (
            r"\b(?:ignore|forget)\b\W+(?:\w+\W+){0,3}?(?:instructions|rules)",
            (("forget", "ignore"), ("rules", "instructions")),
        ),
        (r"act (?:as|like)\b", (("act as", "act like"),)),
        (r"\bclear(?!\W+list)\b", (("clear",),)),
        (r"(?:now(?<=^now)|later), you are", (("now, you are", "later, you are"),)),  # lookbehind: ignored
        (r"instructions?:", (("instruction:", "instructions:"),)),
    ],
)
def test_derived_literals_are_necessary(pattern: str, expected: tuple[tuple[str, ...], ...]) -> None:
    clauses = required_literals(re.compile(pattern))
    assert {frozenset(c) for c in clauses} == {frozenset(c) for c in expected}


@pytest.mark.parametrize(
    "pattern",
    [
        r"(?i)ignore previous",  # case-insensitive: a literal can match other characters
        r"ignore (?i:previous)",
        r"(\w+) \1",  # a back-reference
        r"[a-z]+",  # nothing literal
        r"x?",
    ],
)
def test_patterns_it_cannot_analyse_get_no_filter(pattern: str) -> None:
    assert required_literals(re.compile(pattern)) == ()


def test_the_packaged_rules_nearly_all_get_a_filter() -> None:
    """If the standard library's parser changed shape, every pattern would silently lose its filter."""
    rules = RuleSet.load().rules
    patterns = [need for rule in rules for need in rule.needs]
    assert sum(bool(n) for n in patterns) >= 0.95 * len(patterns)


def test_the_packaged_cache_holds_exactly_what_derivation_gives() -> None:
    """Stale after an edit of rules.json: run scripts/build_prefilter_cache.py."""
    patterns = [p for rule in RuleSet.load().rules for p in rule.patterns]
    text = (Path(__file__).resolve().parents[1] / "src/claude_force/security" / CACHE_FILE).read_text("utf-8")
    assert json.loads(text)["entries"] == cache_document(patterns)["entries"]
    assert all(literals_for(p) == required_literals(p) for p in patterns)


def test_a_pattern_the_cache_does_not_hold_is_derived() -> None:
    pattern = re.compile(r"\bno rule file has this (?:pattern|regex)")
    assert pattern_key(pattern) != pattern_key(re.compile(pattern.pattern + " "))
    assert literals_for(pattern) == required_literals(pattern) != ()


@pytest.mark.parametrize(
    "text",
    ["", "not json", "[]", '{"entries": []}', '{"entries": {"k": "x"}}', '{"entries": {"k": [[1]]}}'],
)
def test_a_malformed_cache_gives_no_entries(text: str) -> None:
    assert parse_cache(text) == {}


def test_a_cache_entry_of_the_wrong_shape_is_left_out() -> None:
    doc = {"entries": {"good": [["ab", "cd"]], "empty": [], "bad": [[]], "worse": [["ok", 2]]}}
    assert parse_cache(json.dumps(doc)) == {"good": (("ab", "cd"),), "empty": ()}


def test_literal_index_reports_overlapping_and_nested_literals() -> None:
    index = LiteralIndex(["ignor", "ignore", "gnore p", "无视", "absent"])
    assert len(index) == 5
    assert index.present("please ignore previous; 无视") == {"ignor", "ignore", "gnore p", "无视"}
    assert LiteralIndex([]).present("anything") == frozenset()


def test_literal_index_takes_any_str() -> None:
    """Lone surrogates (JSON allows "\\ud800"), NULs and astral characters are just characters to it."""
    index = LiteralIndex(["ab", "\U0001f600x"])
    assert index.present("ab\ud800\x00\U0001f600x") == {"ab", "\U0001f600x"}
    assert index.present("\udfff") == frozenset()


def test_set_and_substring_checks_agree() -> None:
    text = "please ignore the previous"
    present = LiteralIndex(["ignore", "previous", "system"]).present(text)
    for literals in (("ignore",), ("system",), ("system", "previous")):
        assert has_any(literals, text) == has_any(literals, text, present)
    clauses = (("ignore",), ("system", "previous"))
    assert may_match(clauses, text) and may_match(clauses, text, present)
    assert not may_match((("system",),), text) and not may_match((("system",),), text, present)


def _texts() -> list[str]:
    """Every fourth attack and every fourth harmless text of each data file, cut to 2,000 characters (the
    unfiltered screen takes about 7 ms a text, so all 4,242 would take half a minute)."""
    out: list[str] = []
    for path in sorted(DATA.glob("*.jsonl")):
        lines = path.read_text(encoding="utf-8").split("\n")  # not splitlines(): texts hold U+2028
        records = [json.loads(line) for line in lines if line]
        out.extend([r["text"][:2000] for r in records if r["label"] == "attack"][::4])
        out.extend([r["text"][:2000] for r in records if r["label"] != "attack"][::4])
    return out


def test_filtered_and_unfiltered_screening_agree_on_the_evaluation_texts() -> None:
    filtered, unfiltered = _detectors()
    texts = _texts()
    assert len(texts) > 1000
    differ = [t[:80] for t in texts if filtered.scan(t) != unfiltered.scan(t)]
    assert differ == []


def _fragments() -> list[str]:
    """Pieces of the rules' own literals, so generated text reaches the patterns behind the filters."""
    filtered, _ = _detectors()
    pieces = {lit for rule in filtered.rules.rules for need in rule.needs for c in need for lit in c}
    pieces |= {r for rule in filtered.rules.rules for r in rule.requires}
    return sorted(pieces)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(_fragments()), st.text(max_size=6)), max_size=14))
def test_filtered_and_unfiltered_screening_agree_on_generated_text(parts: list[str]) -> None:
    filtered, unfiltered = _detectors()
    text = " ".join(parts)
    assert filtered.scan(text) == unfiltered.scan(text)
    view = normalize(text, table=filtered.rules.confusables)
    present = _index().present(view)
    for fast, slow in zip(filtered.rules.rules, unfiltered.rules.rules, strict=True):
        # substring checks, set checks against the one-pass index, and no prefilter at all: one answer
        assert fast.matches(view) == fast.matches(view, present) == slow.matches(view)


@lru_cache(maxsize=1)
def _index() -> LiteralIndex:
    return LiteralIndex(_fragments())


# Random regular expressions over a small alphabet, so generated texts often match them.
_ATOMS = st.sampled_from(
    ["a", "b", "ab", "ba", "abc", " ", "x", r"\w", r"\W", r"\s", "[ab]", "[a-c]", ".", r"\b"]
)


def _regex(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.lists(children, min_size=1, max_size=4).map("".join),  # concatenation
        st.lists(children, min_size=2, max_size=3).map(lambda xs: "(?:" + "|".join(xs) + ")"),
        children.map(lambda x: f"(?:{x})?"),
        children.map(lambda x: f"(?:{x})+"),
        children.map(lambda x: f"(?:{x}){{1,3}}?"),
        children.map(lambda x: f"(?:{x}){{0,2}}"),
        children.map(lambda x: f"({x})"),
        children.map(lambda x: f"(?!{x})"),
        children.map(lambda x: f"(?<=a){x}"),
    )


@settings(max_examples=400, deadline=None)
@given(st.recursive(_ATOMS, _regex, max_leaves=10), st.text(alphabet="abcx \n", max_size=30))
def test_a_pattern_never_matches_where_its_literals_are_absent(source: str, text: str) -> None:
    pattern = re.compile(source)
    clauses = required_literals(pattern)
    if pattern.search(text) is not None:
        assert may_match(clauses, text), (source, text, clauses)
        assert may_match(clauses, text, LiteralIndex(lit for c in clauses for lit in c).present(text))


def _kinds_detector() -> RuleDetector:
    """One rule of each kind the scan loop looks up differently: gated by ``requires``, filtered by its
    patterns' literals, on the raw view, and one that cannot be filtered (case-insensitive, so always tried)."""
    doc = {
        "threshold": 0.5,
        "rules": [
            {"id": "gated", "weight": 0.9, "requires": ["zebra"], "patterns": [r"\bzebra\w*\b"]},
            {"id": "filtered", "weight": 0.9, "patterns": [r"\bforget (?:the )?rules\b", r"\bdrop table\b"]},
            {"id": "raw", "weight": 0.9, "target": "raw", "patterns": [r"ROOT!"]},
            {"id": "always", "weight": 0.9, "patterns": [r"(?i)q+x+"]},
            {"id": "second-pattern", "weight": 0.2, "patterns": [r"(?i)nope", r"\bwombat\b"]},
        ],
    }
    return RuleDetector(rules=RuleSet.from_document(doc))


@pytest.mark.parametrize(
    ("text", "rules"),
    [
        ("zebras everywhere", ("gated",)),
        ("a zebr/a", ()),  # (with a space, "zebr a" is a split word the joiner puts back together)
        ("please forget the rules", ("filtered",)),
        ("then DROP TABLE users", ("filtered",)),
        ("i am ROOT! now", ("raw",)),
        ("i am root! now", ()),  # the raw view keeps case
        ("qqxx", ("always",)),
        ("a wombat", ("second-pattern",)),
        ("zebra, forget rules, ROOT!, qx", ("gated", "filtered", "raw", "always")),  # in rule-file order
        ("nothing to see", ()),
    ],
)
def test_every_kind_of_rule_is_tried_where_it_can_match(text: str, rules: tuple[str, ...]) -> None:
    verdict = _kinds_detector().scan(text)
    assert verdict.rules == rules
