"""Necessary literals of a regular expression: a cheap test that lets the screen skip patterns that cannot match.

:func:`required_literals` reads a compiled pattern's parse tree and returns clauses: tuples of literal strings
such that every string the pattern can match contains, for each clause, at least one of that clause's literals.
:func:`may_match` checks them, so a pattern whose literals are absent is never run. :class:`LiteralIndex` finds
which of thousands of literals occur in a text in one Aho-Corasick pass (``pyahocorasick``), so the checks
become set lookups. This is the prefilter design of RE2 and Hyperscan, on Python's own ``re``: it never changes
a result, it only avoids work. A pattern it cannot analyse (case-insensitive, or an unknown construct) gets no
clauses and always runs.

Why hand-written: the maintained engines with multi-pattern prefilters (``google-re2``, ``hyperscan``) have
ASCII-only ``\\b`` and ``\\w``, and no lookarounds, so they would match differently from the ``re`` patterns in
``rules.json``. This module reads the parse tree of the standard library's own parser (``re._parser``, named
``sre_parse`` on 3.10); if that parser is missing or changes shape, every pattern falls back to always running
(``tests/test_prefilter.py`` fails loudly if too few patterns get clauses).

Parsing every packaged pattern takes about 0.2 s, so the packaged rules' clauses are derived ahead of time into
``prefilter.json`` (:func:`literals_for` reads it, keyed by a hash of each pattern's flags and source; a pattern it
does not hold, such as one from your own rule file or one edited since, is derived at load).
``scripts/build_prefilter_cache.py`` regenerates the file, and a test fails while it is stale.

Example::

    >>> import re
    >>> required_literals(re.compile(r"\\b(?:ignore|forget)\\b\\W+(?:\\w+\\W+){0,3}?(?:instructions|rules)"))
    (('forget', 'ignore'), ('rules', 'instructions'))
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Set
from importlib import resources
from typing import Any, Final

import ahocorasick  # no type stubs: an override in pyproject.toml

__all__ = [
    "CACHE_FILE",
    "Clauses",
    "LiteralIndex",
    "cache_document",
    "has_any",
    "implies",
    "literals_for",
    "may_match",
    "parse_cache",
    "pattern_key",
    "required_literals",
]

try:  # the standard library's regex parser: re._parser on 3.11+, sre_parse on 3.10
    import re._parser as _sre  # type: ignore[import-not-found,unused-ignore]  # novermin
except ImportError:  # pragma: no cover - Python 3.10
    import sre_parse as _sre  # type: ignore[no-redef,unused-ignore]

#: Clauses of necessary literals: every match contains one literal of each clause. Empty: no filter.
Clauses = tuple[tuple[str, ...], ...]

_MAX_EXACT: Final = 48  # the most alternative strings tracked for one sub-pattern
_MAX_CLAUSES: Final = 4  # the clauses kept per pattern (the most selective)
_MIN_LITERAL: Final = 2  # a clause whose shortest literal is shorter than this filters too little


#: The packaged rules' clauses, derived ahead of time (parsing 266 patterns costs about 0.2 s on the first scan).
CACHE_FILE: Final = "prefilter.json"


class _Opaque(Exception):
    """The parse tree holds something this module does not analyse."""


def required_literals(pattern: re.Pattern[str]) -> Clauses:
    """Clauses of literals every match of ``pattern`` must contain; ``()`` when it cannot say."""
    if pattern.flags & re.IGNORECASE or not isinstance(pattern.pattern, str):
        return ()
    try:
        tree = _sre.parse(pattern.pattern, pattern.flags)
        _, clauses = _sequence(list(tree))
    except (_Opaque, re.error, AttributeError, TypeError, ValueError, RecursionError):
        return ()
    return _select(clauses)


def pattern_key(pattern: re.Pattern[str]) -> str:
    """What identifies a pattern in the cache: a hash of its flags and source (a changed pattern misses)."""
    source = f"{pattern.flags}\x00{pattern.pattern}".encode("utf-8", "surrogatepass")
    return hashlib.sha256(source).hexdigest()[:32]


def literals_for(pattern: re.Pattern[str]) -> Clauses:
    """:func:`required_literals` of ``pattern``, read from the packaged cache when it holds this pattern."""
    hit = _packaged_cache().get(pattern_key(pattern))
    return hit if hit is not None else required_literals(pattern)


def cache_document(patterns: Iterable[re.Pattern[str]]) -> dict[str, Any]:
    """The cache file's content for ``patterns`` (``scripts/build_prefilter_cache.py`` writes it)."""
    entries = {pattern_key(p): [list(c) for c in required_literals(p)] for p in patterns}
    return {
        "version": 1,
        "description": "Necessary literals of the packaged rules.json patterns (claude_force.security.prefilter), "
        "keyed by pattern_key(). Derived data: scripts/build_prefilter_cache.py regenerates it.",
        "entries": dict(sorted(entries.items())),
    }


def parse_cache(text: str) -> dict[str, Clauses]:
    """The entries of a cache file; ``{}`` if it is malformed, and an entry of the wrong shape is left out (its
    pattern is then derived at load)."""
    try:
        entries = json.loads(text)["entries"]
        return {
            str(key): tuple(tuple(lit for lit in clause) for clause in clauses)
            for key, clauses in entries.items()
            if isinstance(clauses, list)
            and all(
                isinstance(c, list) and c and all(isinstance(lit, str) and lit for lit in c) for c in clauses
            )
        }
    except (ValueError, KeyError, TypeError, AttributeError):
        return {}


@functools.lru_cache(maxsize=1)
def _packaged_cache() -> dict[str, Clauses]:
    try:
        text = resources.files("claude_force.security").joinpath(CACHE_FILE).read_text(encoding="utf-8")
    except OSError:
        return {}
    return parse_cache(text)


def has_any(literals: tuple[str, ...], text: str, present: Set[str] | None = None) -> bool:
    """Whether one of ``literals`` occurs in ``text``; ``present`` is ``LiteralIndex.present(text)`` if known."""
    if present is not None:
        return not present.isdisjoint(literals)
    return any(literal in text for literal in literals)


def implies(clauses: Clauses, literals: Iterable[str]) -> bool:
    """Whether every text that ``clauses`` let through contains one of ``literals``.

    True when some clause has only literals that each contain one of ``literals``: a text holding that clause's
    literal then holds the contained one. ``()`` (no clauses: nothing known) implies nothing, and neither does a
    set of ``literals`` holding ``""`` (it says nothing, and :class:`LiteralIndex` does not index it). This is how
    a rule's hand-written ``requires`` is checked against what its patterns need (see
    :class:`~claude_force.security.ruleset.Rule`).

    Example::

        >>> implies((("ignore", "forget"), ("instructions", "instruções")), ["instru"])
        True
        >>> implies((("instructions", "instruções"),), ["instruc"])
        False
    """
    wanted = tuple(literals)
    if not wanted or "" in wanted:
        return False
    return any(clause and all(any(w in lit for w in wanted) for lit in clause) for clause in clauses)


def may_match(clauses: Clauses, text: str, present: Set[str] | None = None) -> bool:
    """False only if some clause has none of its literals in ``text`` (the pattern then cannot match).

    ``present``, when given, must be :meth:`LiteralIndex.present` of ``text`` for an index holding every literal of
    ``clauses``; the checks are then set lookups instead of substring searches.
    """
    # Loops, not all(genexpr), and no has_any() call: this runs for every candidate pattern of every scan.
    if present is not None:
        for clause in clauses:  # noqa: SIM110
            if present.isdisjoint(clause):
                return False
        return True
    for clause in clauses:  # noqa: SIM110
        if not any(literal in text for literal in clause):
            return False
    return True


class LiteralIndex:
    """The literals of a rule set, searched all at once: ``present(text)`` is the set of those occurring in it.

    Example::

        index = LiteralIndex(["ignor", "previous", "system prompt"])
        index.present("please ignore the previous line")   # {"ignor", "previous"}
    """

    __slots__ = ("_automaton", "_size")

    def __init__(self, literals: Iterable[str]) -> None:
        automaton = ahocorasick.Automaton()
        for literal in literals:
            if literal:
                automaton.add_word(literal, literal)
        self._size = len(automaton)
        if self._size:
            automaton.make_automaton()
        self._automaton = automaton

    def __len__(self) -> int:
        return self._size

    def __repr__(self) -> str:
        return f"LiteralIndex(literals={self._size})"

    def occurrences(self, text: str) -> Iterator[tuple[int, str]]:
        """``(start, literal)`` for every occurrence of an indexed literal in ``text``, overlapping ones included."""
        if not self._size:
            return
        for end, literal in self._automaton.iter(text):
            yield end - len(literal) + 1, literal

    def present(self, text: str) -> frozenset[str]:
        """Every indexed literal that occurs in ``text``, overlapping occurrences included."""
        if not self._size:
            return frozenset()
        return frozenset(literal for _end, literal in self._automaton.iter(text))


def _select(clauses: Iterable[frozenset[str]]) -> Clauses:
    kept: dict[tuple[str, ...], None] = {}
    for clause in clauses:
        reduced = _minimal(clause)
        if reduced and min(len(s) for s in reduced) >= _MIN_LITERAL:
            kept[reduced] = None
    # The most selective first: longer shortest literal, then fewer alternatives.
    ranked = sorted(kept, key=lambda c: (-min(len(s) for s in c), len(c)))
    return tuple(ranked[:_MAX_CLAUSES])


def _minimal(clause: frozenset[str]) -> tuple[str, ...]:
    """Drop literals that contain another literal of the clause (the shorter one is present whenever they are)."""
    if "" in clause:
        return ()
    ordered = sorted(clause, key=lambda s: (len(s), s))
    kept: list[str] = []
    for s in ordered:
        if not any(k in s for k in kept):
            kept.append(s)
    return tuple(kept)


def _sequence(items: list[tuple[Any, Any]]) -> tuple[frozenset[str] | None, list[frozenset[str]]]:
    """(exact strings the sequence matches, or None; necessary clauses) for a concatenation."""
    clauses: list[frozenset[str]] = []
    current: frozenset[str] = frozenset({""})
    exact_whole = True
    for op, av in items:
        exact, inner = _node(op, av)
        clauses.extend(inner)
        if exact is None:
            clauses.append(current)
            current, exact_whole = frozenset({""}), False
            continue
        product = frozenset(a + b for a in current for b in exact)
        if len(product) > _MAX_EXACT:
            clauses.append(current)
            current, exact_whole = exact, False
        else:
            current = product
    clauses.append(current)
    return (current if exact_whole else None), clauses


def _node(op: Any, av: Any) -> tuple[frozenset[str] | None, list[frozenset[str]]]:
    """(exact strings, or None; necessary clauses) for one parse-tree node."""
    if op is _sre.LITERAL:
        return frozenset({chr(av)}), []
    if op in (_sre.AT, _sre.ASSERT, _sre.ASSERT_NOT):  # zero-width: matches the empty string here
        return frozenset({""}), []
    if op is _sre.SUBPATTERN:
        _group, add_flags, _del_flags, sub = av
        if add_flags & re.IGNORECASE:
            raise _Opaque
        return _sequence(list(sub))
    if op is _sre.BRANCH:
        return _branch([list(b) for b in av[1]])
    if op is _sre.IN:
        return _char_class(av), []
    if op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT):
        low, high, sub = av
        exact, inner = _sequence(list(sub))
        if low == 0:
            return (exact | {""} if exact is not None and high == 1 else None), []
        if low == high == 1:
            return exact, inner
        return None, [*inner, *([exact] if exact is not None else [])]
    if op in (_sre.ANY, _sre.NOT_LITERAL, _sre.CATEGORY):
        return None, []
    raise _Opaque  # group references, conditionals, atomic groups, possessive repeats...


def _branch(branches: list[list[tuple[Any, Any]]]) -> tuple[frozenset[str] | None, list[frozenset[str]]]:
    exacts: list[frozenset[str] | None] = []
    best: set[str] = set()
    covered = True
    for items in branches:
        exact, clauses = _sequence(items)
        exacts.append(exact)
        useful = [c for c in clauses if "" not in c]
        if not useful:
            covered = False
            continue
        best |= min(useful, key=lambda c: (-min(len(s) for s in c), len(c)))
    if all(e is not None for e in exacts):
        union = frozenset(s for e in exacts if e is not None for s in e)
        if len(union) <= _MAX_EXACT:
            return union, []
    return None, ([frozenset(best)] if covered else [])


def _char_class(items: list[tuple[Any, Any]]) -> frozenset[str] | None:
    chars: set[str] = set()
    for op, av in items:
        if op is not _sre.LITERAL:
            return None  # ranges, categories, negation: too many characters to track
        chars.add(chr(av))
    return frozenset(chars) if len(chars) <= _MAX_EXACT else None
