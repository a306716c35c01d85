"""What the decoders reveal in a text: the hidden payloads the rules scan again, and the classifier reads.

A decoder turns a text into the text it hides (a base64 blob's contents, HTML character references resolved,
markup removed from inside words, ROT13 undone, ...) or says there is none. Each decoded text is scanned again by
the rules (:class:`~claude_force.security.injection.RuleDetector`), to ``max_depth`` levels; the decoding itself
lives in :mod:`claude_force.security.normalize`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

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
from claude_force.security.ruleset import DecodeLimits

__all__ = ["revealed_texts"]

#: A base64 blob, also wrapped over lines as MIME and PEM do (64 or 76 columns). Each continuation starts after a
#: line break, which no base64 character is, so a blob splits into lines one way only: no backtracking blow-up.
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}(?:[ \t]*\r?\n[ \t]*[A-Za-z0-9+/_-]{4,}={0,2})*")
_BLANKS = re.compile(r"\s+")
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2}){8,}")


def revealed_texts(text: str, lim: DecodeLimits, *, top: bool) -> Iterator[tuple[str, str]]:
    """(decoder rule id, decoded text) for hidden payloads, at most ``max_blobs`` of them.

    Tag characters, HTML character references and markup inside words are revealed at every depth (an encoded
    blob may hold them); the whole-text rewrites (Morse, ROT13, leetspeak, spaced letters) only run on the task
    itself (``top``), not on what a decoder revealed, so their cost is paid once. Every base64 blob of the text
    is decoded and the decodings are scanned as one text (likewise hex), so harmless blobs placed first cannot
    use up the budget before the one that matters; that is nine decoded texts at most, which the default
    ``max_blobs`` covers, and together they are no longer than the text.
    """
    budget = lim.max_blobs
    rewrites = (
        (lim.morse_id, decode_morse),
        (lim.rot13_id, decode_rot13),
        (lim.leet_id, decode_leetspeak),
        (lim.spaced_id, join_spaced_letters),
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
