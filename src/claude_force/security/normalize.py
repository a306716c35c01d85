"""Text normalisation for injection screening: one canonical form to match rules against, and decoders that
reveal text hidden by an obfuscation (the detector scans what they return again).

``normalize(text)`` applies, in order:

1. NFKC (full-width, ligatures and mathematical letters become plain ones: ``ｉｇｎｏｒｅ`` -> ``ignore``);
2. removal of invisible characters: every format character (zero-width, bidi controls, tag characters, soft
   hyphen, interlinear annotation marks, ...), variation selectors and the Hangul fillers;
3. case-folding, then NFKC again (case-folding can leave non-NFKC text);
4. mapping of look-alike letters (Cyrillic/Greek/small capitals, curly quotes) to ASCII, from the
   ``confusables`` table of ``rules.json`` (then NFKC once more). Text written in Cyrillic or Greek (it holds a
   letter of those scripts that is not a look-alike) keeps its own words: only words that also hold a Latin
   letter are mapped (``Ignоre`` with a Cyrillic ``о`` still becomes ``ignore``; ``все`` stays ``все``);
5. removal of combining marks on Latin letters (accents, underlines, strike-throughs: ``I̲g̲n̲o̲r̲e̲`` and
   ``ígnóré`` read ``ignore``; the rules are written without accents on Latin letters);
6. whitespace collapse: a run of whitespace becomes one ``"\\n"`` if it holds a line break, else one space.

The result is only ever matched against; the task itself is never rewritten. ``normalize`` is idempotent:
``normalize(normalize(t)) == normalize(t)`` (checked by the fuzz tests). Example::

    >>> normalize("Ｉgn\\u200bore  ALL\\n\\n previous")
    'ignore all\\nprevious'

The decoders each return ``None`` when the text does not look obfuscated that way: Unicode tag characters,
HTML character references (``&#73;&#103;``), markup inside words (``**ig**nore``), base64 and hex blobs, Morse
code, ROT13, leetspeak (``1gn0r3``) and letter-spaced words (``i g n o r e``).
"""

from __future__ import annotations

import base64
import binascii
import functools
import html
import itertools
import json
import re
import unicodedata
from collections.abc import Iterator, Mapping
from importlib import resources
from typing import Any

__all__ = [
    "INVISIBLE",
    "bound_text",
    "decode_base64",
    "decode_hex",
    "decode_html_entities",
    "decode_leetspeak",
    "decode_morse",
    "decode_rot13",
    "decode_tag_characters",
    "join_spaced_letters",
    "load_rules_document",
    "mostly_printable",
    "normalize",
    "remove_markup_in_words",
    "strip_invisible",
    "strip_latin_marks",
]

#: Characters that render as nothing (or reorder text) and are removed before matching.
INVISIBLE = re.compile(
    "[\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160\u17b4\u17b5\u180b-\u180f"
    "\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0000-\U000e007f\U000e0100-\U000e01ef]"
)
#: Non-ASCII text right after a Latin letter, in the decomposed text: its leading combining marks (category Mn or
#: Me: ``I̲g̲n̲o̲r̲e̲``, ``ígnóré``, "Zalgo" U+0489) are removed. Marks on letters of other scripts (Devanagari vowel
#: signs, Hebrew points, ...) are part of their words and stay.
_AFTER_LATIN = re.compile(r"(?<=[A-Za-z])[^\x00-\x7f]+")
_MARK_CATEGORIES = frozenset({"Mn", "Me"})
#: Rounds of look-alike mapping and mark stripping in normalize() (it stops as soon as one changes nothing).
_MAX_ROUNDS = 4
_LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
_WHITESPACE = re.compile(r"\s{2,}|[^\S ]")  # every whitespace run but a lone space (which stays as it is)
_TAGS = re.compile("[\U000e0020-\U000e007e]+")
_WORD = re.compile(r"\w+")
_LATIN = re.compile(r"[a-z]")
_SCRIPTS = ((0x0370, 0x03FF), (0x0400, 0x052F), (0x0530, 0x058F))  # Greek, Cyrillic (+ supplement), Armenian


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


def is_default_table(table: Mapping[int, str]) -> bool:
    """Whether ``table`` maps look-alikes as the packaged one does (what :func:`normalize` uses by default)."""
    default = _default_table()
    return table is default or table == default


def confusables_table(mapping: Mapping[str, str]) -> dict[int, str]:
    """A ``str.translate`` table from a ``{"look-alike": "ascii"}`` mapping (keys must be one character)."""
    table: dict[int, str] = {}
    for src, dst in mapping.items():
        if len(src) != 1:
            raise ValueError(f"confusable key must be one character, got {src!r}")
        table[ord(src)] = dst
    return table


def _in_scripts(code: int) -> bool:
    return any(lo <= code <= hi for lo, hi in _SCRIPTS)


def _letters(table: Mapping[int, str]) -> dict[int, str]:
    return {k: v for k, v in table.items() if chr(k).isalpha()}


def _native(text: str, table: Mapping[int, str]) -> bool:
    """Whether ``text`` (prepared, see :func:`_prepare`) holds Greek, Cyrillic or Armenian characters that are no
    look-alikes (real text in those scripts): then only words that mix them with Latin letters are mapped."""
    if text.isascii():
        return False
    letters = _letters(table)
    text = text.translate({k: v for k, v in table.items() if k not in letters})
    return any(ord(ch) not in letters and _in_scripts(ord(ch)) for ch in set(text))


def has_native_letters(text: str, *, table: Mapping[int, str] | None = None) -> bool:
    """The decision :func:`normalize` makes once for ``text`` as a whole (see ``native`` there)."""
    table = _default_table() if table is None else table
    return _native(_prepare(text), table)


def _map_lookalikes(text: str, table: Mapping[int, str], native: bool) -> str:
    if text.isascii():
        return text
    letters = _letters(table)
    text = text.translate({k: v for k, v in table.items() if k not in letters})
    if not native:
        return text.translate(letters)

    def mixed(m: re.Match[str]) -> str:
        word = m.group()
        return word.translate(letters) if not word.isascii() and _LATIN.search(word) else word

    return _WORD.sub(mixed, text)


def strip_invisible(text: str) -> str:
    """Remove zero-width, bidi-control, tag and variation-selector characters."""
    return INVISIBLE.sub("", text)


def _collapse(match: re.Match[str]) -> str:
    return "\n" if any(ch in _LINE_BREAKS for ch in match.group()) else " "


def bound_text(text: str, max_chars: int) -> str:
    """The first and last ``max_chars`` characters of ``text`` (all of it when short enough)."""
    if len(text) <= 2 * max_chars:
        return text
    return text[:max_chars] + "\n" + text[-max_chars:]


def normalize(text: str, *, table: Mapping[int, str] | None = None, native: bool | None = None) -> str:
    """The canonical matching form of ``text`` (see the module docstring for the steps).

    ``native`` overrides the decision, made from ``text`` itself, whether it holds real Greek, Cyrillic or
    Armenian text (see :func:`has_native_letters`): a piece of a text is normalised as it is within the whole.
    """
    table = _default_table() if table is None else table
    out = _prepare(text)
    if native is None:
        native = _native(out, table)  # once, for the whole text: the rounds below keep to it
    # NFKC again after mapping: an ASCII letter can compose with a following combining mark (stripped again).
    # Stripping a mark can join a word the mapping saw as two, so map and strip until nothing changes (each round
    # only turns letters into ASCII or drops marks; a few rounds at most, and one on ASCII text).
    for _ in range(_MAX_ROUNDS):
        before = out
        out = strip_invisible(unicodedata.normalize("NFKC", _map_lookalikes(out, table, native)))
        if not out.isascii():
            out = strip_latin_marks(out)
        if out.isascii() or out == before:
            break
    return _WHITESPACE.sub(_collapse, out).strip()


def _prepare(text: str) -> str:
    """The steps before the look-alike mapping: NFKC, invisible characters out, case-fold, marks on Latin letters
    out (before the mapping, which asks whether a word holds a Latin letter: à is one)."""
    out = unicodedata.normalize("NFKC", text)
    out = strip_invisible(out)
    out = unicodedata.normalize("NFKC", out.casefold())
    return strip_latin_marks(out) if not out.isascii() else out


def strip_latin_marks(text: str) -> str:
    """``text`` (NFC) without the combining marks that sit on Latin letters: ``ígnóré`` -> ``ignore``."""
    decomposed = unicodedata.normalize("NFD", text)
    stripped = _AFTER_LATIN.sub(_drop_leading_marks, decomposed)
    return text if stripped == decomposed else unicodedata.normalize("NFC", stripped)


def _drop_leading_marks(match: re.Match[str]) -> str:
    run = match.group()
    i = 0
    while i < len(run) and unicodedata.category(run[i]) in _MARK_CATEGORIES:
        i += 1
    return run[i:]


def decode_tag_characters(text: str) -> str | None:
    """The ASCII hidden in Unicode tag characters (U+E0020..U+E007E), or None if there is none."""
    runs = _TAGS.findall(text)
    if not runs:
        return None
    return " ".join("".join(chr(ord(ch) - 0xE0000) for ch in run) for run in runs)


# --- Decoders for obfuscations that are not encodings of bytes (the detector rescans what they return). ---

_MORSE_CHARS = str.maketrans(
    {"\u00b7": ".", "\u2022": ".", "\u2219": ".", "\u2212": "-", "\u2013": "-", "\u2014": "-"}
)
_MORSE_SYMBOLS = ".-\u00b7\u2022\u2219\u2212\u2013\u2014"
_MORSE_RUN = re.compile(r"[.\-]{1,7}(?:[ /|]{1,5}[.\-]{1,7}){11,}")
_MORSE_WORD_BREAK = re.compile(r"\s*[/|]\s*|\s{2,}")
_MORSE_CODES = (
    ".- -... -.-. -.. . ..-. --. .... .. .--- -.- .-.. -- -. --- .--. --.- .-. ... - ..- ...- .-- -..- -.-- --.. "
    "----- .---- ..--- ...-- ....- ..... -.... --... ---.. ----. "
    ".-.-.- --..-- ..--.. .----. -.-.-- -..-. -.--. -.--.- ---... -.-.-. -...- .-.-. -....- .-..-. .--.-."
)
_MORSE = dict(zip(_MORSE_CODES.split(), "abcdefghijklmnopqrstuvwxyz0123456789.,?'!/():;=+-\"@", strict=True))
_ROT13_WORDS = re.compile(
    r"\b(?:gur|lbh|lbhe|naq|vtaber|cerivbhf|vafgehpgvbaf|abj|sebz|jvgu|guvf|gung|ner|jvyy|flfgrz|cebzcg|frperg|"
    r"cnffjbeq|eryrnfr|ehyrf)\b"
)
_ROT13 = str.maketrans(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "nopqrstuvwxyzabcdefghijklmNOPQRSTUVWXYZABCDEFGHIJKLM",
)
_LEET_TOKEN = re.compile(r"[A-Za-z0-9@$]{2,}")
_LEET_ONLY = re.compile(r"[A-Za-z]*[013457@$][A-Za-z013457@$]*")
_LEET_HINT = re.compile(r"[A-Za-z][013457@$]|[013457@$][A-Za-z]")
_LEET = str.maketrans("013457@$", "oieastas")
#: Single letters with one separator between them, the same one all along (``i g n o r e``, ``i.g.n.o.r.e``,
#: ``i,g,n,o,r,e``, middle dots): with commas or dots the words of a text stay apart at its spaces.
_SPACED_RUN = re.compile(
    r"(?<![A-Za-z0-9])[A-Za-z](?P<sep>[ .\-_,\u00b7\u2022\u2027\u2219])[A-Za-z](?:(?P=sep)[A-Za-z])+(?![A-Za-z0-9])"
)


def decode_morse(text: str, *, min_letters: int = 8) -> str | None:
    """The text of Morse-code runs (``.. --. -. --- .-. .``), words split on ``/``, ``|`` or two spaces."""
    # A run is 12+ groups of dots and dashes: text with fewer such characters has none (a cheap exact test).
    if sum(text.count(ch) for ch in _MORSE_SYMBOLS) < 12:
        return None
    words: list[str] = []
    for run in _MORSE_RUN.finditer(text.translate(_MORSE_CHARS)):
        for word in _MORSE_WORD_BREAK.split(run.group()):
            decoded = "".join(_MORSE.get(code, "") for code in word.split())
            if decoded:
                words.append(decoded)
    out = " ".join(words)
    return out if sum(ch.isalpha() for ch in out) >= min_letters else None


def decode_rot13(text: str, *, min_words: int = 3) -> str | None:
    """``text`` rotated by 13 when it holds at least ``min_words`` distinct ROT13-encoded common words."""
    found = {m.group() for m in _ROT13_WORDS.finditer(text.casefold())}
    return text.translate(_ROT13) if len(found) >= min_words else None


def decode_leetspeak(text: str, *, min_tokens: int = 3, min_ratio: float = 0.15) -> str | None:
    """``text`` with leetspeak words (``1gn0r3``) spelled in letters, when enough of its words look like that.

    A leetspeak word mixes letters with ``0 1 3 4 5 7 @ $`` only (``sha256`` and ``utf8`` do not count).
    """
    # Every leetspeak word has a letter next to one of 0134579@$ somewhere: too few such places, too few words.
    if len(_LEET_HINT.findall(text)) < min_tokens:
        return None
    tokens = _LEET_TOKEN.findall(text)
    leet = {t for t in tokens if _LEET_ONLY.fullmatch(t) and not t.isdigit() and any(c.isalpha() for c in t)}
    if len(leet) < min_tokens or sum(t in leet for t in tokens) < min_ratio * len(tokens):
        return None
    return _LEET_TOKEN.sub(lambda m: m.group().translate(_LEET) if m.group() in leet else m.group(), text)


def join_spaced_letters(text: str, *, min_runs: int = 2, min_letters: int = 10) -> str | None:
    """``text`` with letter-spaced words (``i g n o r e``, ``i.g.n.o.r.e``, ``i,g,n,o,r,e``, middle dots) joined, if
    there are enough of them."""
    runs = [m.group() for m in _SPACED_RUN.finditer(text)]
    if len(runs) < min_runs and sum(len(r) for r in runs) < 2 * min_letters:
        return None
    if sum((len(r) + 1) // 2 for r in runs) < min_letters:
        return None
    return _SPACED_RUN.sub(lambda m: "".join(ch for ch in m.group() if ch.isalpha()), text)


#: An HTML character reference: numeric (``&#73;``, ``&#x49;``, also without the ``;`` or with leading zeros, as
#: browsers read them) or named (``&lt;``).
_ENTITY = re.compile(r"&(?:#0*[0-9]{1,7};?|#[xX]0*[0-9A-Fa-f]{1,6};?|[A-Za-z][A-Za-z0-9]{1,31};)")
#: One piece of inline markup: an HTML comment or tag, a run of emphasis marks, strike-through or backticks. No
#: quantifier is nested, and adjacent pieces are merged in Python, so finding them is linear in the text.
_MARKUP_TOKEN = re.compile(
    r"<!--(?:(?!-->).){0,200}-->|</?[A-Za-z][A-Za-z0-9]{0,10}(?:\s[^<>\n]{0,80})?/?>|\*+|_{2,}|~{2,}|`+", re.S
)
#: Tags that end a line when rendered: removing them must not join the words on either side.
_BLOCK_TAG = re.compile(
    r"</?(?:br|p|div|li|ul|ol|dl|dt|dd|tr|td|th|h[1-6]|hr|table|blockquote|pre|section|article|header|footer)\b",
    re.I,
)


def decode_html_entities(text: str, *, min_entities: int = 3) -> str | None:
    """``text`` with HTML character references resolved (``&#73;&#103;...`` -> ``Ig...``), if it holds enough."""
    if "&" not in text:
        return None
    if sum(1 for _ in itertools.islice(_ENTITY.finditer(text), min_entities)) < min_entities:
        return None
    return _ENTITY.sub(lambda m: html.unescape(m.group()), text)


def remove_markup_in_words(text: str, *, min_splits: int = 2) -> str | None:
    """``text`` as rendered, without its inline markup, if markup splits at least ``min_splits`` words
    (``**ig**nore``, ``ig<!-- -->nore``): then every tag, comment, emphasis mark and backtick goes (a line-ending
    tag such as ``<br>`` becomes a line break), so ``**ig**nore **al**l`` reads ``ignore all``.

    Only markup counts as a split, not hyphens, dots or apostrophes: those join honest words (``e-mail``,
    ``file.py``, ``don't``) too often.
    """
    if not any(ch in text for ch in "<*_~`"):
        return None
    runs = list(_markup_runs(text))
    end = len(text)
    splits = sum(1 for a, b, _ in runs if a > 0 and b < end and text[a - 1].isalpha() and text[b].isalpha())
    if splits < min_splits:
        return None
    out: list[str] = []
    last = 0
    for a, b, block in runs:
        out.append(text[last:a])
        out.append("\n" if block else "")
        last = b
    out.append(text[last:])
    return "".join(out)


def _markup_runs(text: str) -> Iterator[tuple[int, int, bool]]:
    """``(start, end, holds a line-ending tag)`` of each run of adjacent markup pieces."""
    start = stop = -1
    block = False
    for m in _MARKUP_TOKEN.finditer(text):
        piece_block = m.group().startswith("<") and _BLOCK_TAG.match(m.group()) is not None
        if m.start() == stop:
            stop, block = m.end(), block or piece_block
            continue
        if start >= 0:
            yield start, stop, block
        start, stop, block = m.start(), m.end(), piece_block
    if start >= 0:
        yield start, stop, block


def decode_base64(blob: str) -> str | None:
    """A base64 (standard or URL-safe) blob as UTF-8 text, or None."""
    core = blob.rstrip("=")
    core = core[: len(core) - len(core) % 4] if len(core) % 4 == 1 else core
    padded = core + "=" * (-len(core) % 4)
    try:
        raw = (
            base64.b64decode(padded, altchars=b"-_", validate=False)
            if ("-" in core or "_" in core)
            else (base64.b64decode(padded, validate=False))
        )
        return raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return None


def decode_hex(blob: str) -> str | None:
    """A hex blob as UTF-8 text, or None."""
    try:
        return bytes.fromhex(blob[: len(blob) - len(blob) % 2]).decode("utf-8")
    except ValueError:
        return None


def mostly_printable(text: str, ratio: float) -> bool:
    """At least ``ratio`` printable characters, some letters, and 8 characters or more."""
    if len(text) < 8:
        return False
    good = sum(1 for ch in text if ch.isprintable() or ch in "\n\r\t")
    return good / len(text) >= ratio and any(ch.isalpha() for ch in text)
