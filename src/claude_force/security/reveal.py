"""What the decoders reveal in a text: the hidden payloads the rules scan again, and the classifier reads.

A decoder turns a text into the text it hides (a base64 blob's contents, HTML character references resolved,
markup removed from inside words, ROT13 undone, ...) or says there is none. Each decoded text is scanned again by
the rules (:class:`~claude_force.security.injection.RuleDetector`), to ``max_depth`` levels; the decoding itself
lives in :mod:`claude_force.security.normalize`.
"""

from __future__ import annotations

import bisect
import collections
import re
from collections.abc import Callable, Iterator, Set

from claude_force.security.normalize import (
    decode_base64,
    decode_hex,
    decode_html_entities,
    decode_leetspeak,
    decode_morse,
    decode_rot13,
    decode_tag_characters,
    join_spaced_letters,
    mostly_printable,
    remove_markup_in_words,
)
from claude_force.security.prefilter import LiteralIndex
from claude_force.security.ruleset import DecodeLimits

__all__ = ["join_split_words", "revealed_texts"]

#: A base64 blob, also wrapped over lines as MIME and PEM do (64 or 76 columns). Each continuation starts after a
#: line break, which no base64 character is, so a blob splits into lines one way only: no backtracking blow-up.
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}(?:[ \t]*\r?\n[ \t]*[A-Za-z0-9+/_-]{4,}={0,2})*")
_BLANKS = re.compile(r"\s+")
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2}){8,}")
#: The separators :func:`join_split_words` removes from between two pieces of a word: one of them, alone.
_JOINABLE = frozenset(" -._\u00b7\u2027\u2022")
_INNER_SEPARATOR = re.compile(f"(?<=[a-z])[{re.escape(''.join(sorted(_JOINABLE)))}](?=[a-z])")
#: A run of letters: a word, or a piece of one.
_FRAGMENT = re.compile(r"[A-Za-z]+")


def join_split_words(text: str, index: LiteralIndex, known: Set[str]) -> str | None:
    """``text`` with words split by one separator joined again (``ig nore``, ``instruc-tions``, ``pre.vious``)
    where the pieces together begin with one of the rules' words (``index``, the words of five letters or more) and
    at least one piece is not a word of ``known`` (honest words side by side, ``for get``, stay apart); None if
    there is no such word.

    The text is checked with all such separators between letters removed first (one pass in C): only a screened
    word found there more often than in the text itself can be split, so most honest texts cost that one pass.
    """
    lowered = text.lower()
    collapsed = _INNER_SEPARATOR.sub("", lowered)
    if collapsed == lowered:
        return None
    # Counted, not just found: the same word written whole elsewhere in the text must not hide a split copy.
    whole = collections.Counter(lit for _, lit in index.occurrences(lowered))
    hidden = {
        lit
        for lit, n in collections.Counter(lit for _, lit in index.occurrences(collapsed)).items()
        if n > whole[lit]
    }
    if not hidden:
        return None
    starts: dict[int, int] = {}  # offset in the chain's joined letters -> fragment number
    pieces: list[tuple[int, int]] = []  # (start, end) of each fragment in ``text``
    joins: set[int] = set()  # fragment numbers joined to the next one
    chain: list[str] = []
    size = 0
    for m in _FRAGMENT.finditer(text):
        if pieces and text[pieces[-1][1] : m.start()] not in _JOINABLE:
            _mark("".join(chain), starts, joins, index, hidden, known)
            chain, starts, size = [], {}, 0
        starts[size] = len(pieces)
        chain.append(m.group().lower())
        size += len(chain[-1])
        pieces.append((m.start(), m.end()))
    _mark("".join(chain), starts, joins, index, hidden, known)
    if not joins:
        return None
    out: list[str] = []
    last = 0
    for i in sorted(joins):
        out.append(text[last : pieces[i][1]])
        last = pieces[i + 1][0]
    out.append(text[last:])
    return "".join(out)


def _mark(
    chain: str,
    starts: dict[int, int],
    joins: set[int],
    index: LiteralIndex,
    hidden: Set[str],
    known: Set[str],
) -> None:
    """Add to ``joins`` the joins that spell a hidden word in one chain of fragments."""
    if len(starts) < 2:
        return
    offsets = list(starts)  # ascending: fragments were added in order
    bounds = [*offsets, len(chain)]
    base = starts[0]
    for start, literal in index.occurrences(chain):
        first = starts.get(start)
        if first is None or literal not in hidden:
            continue  # a screened word must begin where a fragment begins
        last = base + bisect.bisect_right(offsets, start + len(literal) - 1) - 1  # the fragment it ends in
        parts = [chain[bounds[j - base] : bounds[j - base + 1]] for j in range(first, last + 1)]
        if last > first and not all(part in known for part in parts):  # honest words side by side stay apart
            joins.update(range(first, last))


def revealed_texts(
    text: str, lim: DecodeLimits, *, top: bool, split: Callable[[str], str | None] | None = None
) -> Iterator[tuple[str, str]]:
    """(decoder rule id, decoded text) for hidden payloads, at most ``max_blobs`` of them.

    Tag characters, HTML character references and markup inside words are revealed at every depth (an encoded
    blob may hold them); the whole-text rewrites (Morse, ROT13, leetspeak, spaced letters) only run on the task
    itself (``top``), not on what a decoder revealed, so their cost is paid once; ``split`` is the split-word joiner
    bound to the rules' words (see :func:`join_split_words`). Every base64 blob of the text
    is decoded and the decodings are scanned as one text (likewise hex), so harmless blobs placed first cannot
    use up the budget before the one that matters; that is ten decoded texts at most, which the default
    ``max_blobs`` covers, and together they are no longer than the text.
    """
    budget = lim.max_blobs
    rewrites = (
        (lim.morse_id, decode_morse),
        (lim.rot13_id, decode_rot13),
        (lim.leet_id, decode_leetspeak),
        (lim.spaced_id, join_spaced_letters),
        *(((lim.split_id, split),) if split is not None else ()),
    )
    everywhere = (
        (lim.tags_id, decode_tag_characters),
        (lim.entities_id, decode_html_entities),
        (lim.markup_id, remove_markup_in_words),
    )
    for rule_id, reveal in (*everywhere, *(rewrites if top else ())):
        revealed = reveal(text)
        if revealed and budget > 0:
            budget -= 1
            yield rule_id, revealed  # a rewrite of the text, no longer than the (bounded) text itself
    for rule_id, pattern, min_chars, decode in (
        (lim.base64_id, _BASE64, lim.min_base64_chars, decode_base64),
        (lim.hex_id, _HEX, lim.min_hex_chars, decode_hex),
    ):
        if budget <= 0:
            return
        pieces: list[str] = []
        for m in pattern.finditer(text):
            blob = m.group()
            if "\n" in blob:
                blob = _BLANKS.sub("", blob)  # a wrapped blob, read as one
            if len(blob) < min_chars:
                continue
            decoded = decode(blob[: lim.max_blob_chars])
            if decoded is not None and mostly_printable(decoded, lim.min_printable_ratio):
                pieces.append(decoded)
        if pieces:
            budget -= 1
            yield rule_id, "\n\n".join(pieces)
