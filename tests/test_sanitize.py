"""Log hygiene: safe() can never forge a log line, move the cursor or leak a secret; redact() hides keys."""

from __future__ import annotations

import io
import logging
import secrets

import pytest

from claude_force.security.sanitize import redact, register_secret, safe


def _format_through_logging(value: str) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logger = logging.getLogger(f"claude_force.test_sanitize.{secrets.token_hex(4)}")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.warning("agent=%s failed", safe(value))
    finally:
        logger.removeHandler(handler)
        handler.close()
    return stream.getvalue()


def test_a_value_cannot_forge_a_log_line() -> None:
    out = _format_through_logging("x\n2026-01-01 CRITICAL forged")
    lines = out.splitlines()
    assert len(lines) == 1
    assert not any(line.startswith("2026-01-01 CRITICAL") for line in lines)
    assert "x\\n2026-01-01 CRITICAL forged" in lines[0]


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("a\rb", "a\\rb"),
        ("a\r\nb", "a\\r\\nb"),
        ("tab\there", "tab\\there"),
        ("\x1b[2J\x1b[31mred", "\\x1b[2J\\x1b[31mred"),  # ANSI: clear screen, colour
        ("nul\x00", "nul\\x00"),
        ("del\x7f", "del\\x7f"),
        ("nel\x85", "nel\\x85"),  # C1 next-line
        ("ls\u2028ps\u2029", "ls\\u2028ps\\u2029"),
        ("rlo\u202eevil", "rlo\\u202eevil"),
        ("iso\u2066x\u2069", "iso\\u2066x\\u2069"),
        ("zw\u200bj", "zw\\u200bj"),
        ("surrogate\udcff", "surrogate\\udcff"),
        ("tag\U000e0041", "tag\\U000e0041"),
    ],
)
def test_controls_are_escaped(raw: str, escaped: str) -> None:
    assert safe(raw) == escaped


def test_escaped_output_encodes_as_utf8() -> None:
    safe("bad \udcff surrogate").encode("utf-8")  # a lone surrogate would raise here


def test_plain_text_and_unicode_pass_through() -> None:
    assert safe("code-reviewer") == "code-reviewer"
    assert safe("naïve 日本語 ✓") == "naïve 日本語 ✓"
    assert safe(42) == "42"
    assert safe(None) == "None"


def test_truncation_keeps_the_limit_and_says_how_much_was_cut() -> None:
    out = safe("a" * 1000, limit=10)
    assert out == "a" * 10 + "...(+990)"
    assert safe("abc", limit=3) == "abc"
    assert safe("\n" * 50, limit=6) == "\\n\\n\\n" + "...(+68)"  # 42 escaped chars cut + 26 raw
    assert safe("xyz", limit=0).startswith("x")  # a limit below 1 is treated as 1


def test_anthropic_shaped_keys_are_redacted() -> None:
    key = "sk-ant-api03-" + secrets.token_urlsafe(40)
    out = safe(f"auth failed for {key}")
    assert key not in out and "sk-ant-[REDACTED]" in out
    assert redact("sk-ant-short") == "sk-ant-short"  # too short to be a key


def test_registered_secrets_are_redacted_everywhere() -> None:
    secret = secrets.token_hex(20)
    register_secret(secret)
    assert redact(f"a{secret}b{secret}") == "a[REDACTED]b[REDACTED]"
    assert secret not in safe(f"x\n{secret}")


def test_short_secrets_are_not_registered() -> None:
    register_secret("abc")
    assert redact("abcabc") == "abcabc"


def test_a_secret_cut_by_truncation_does_not_leak_a_prefix() -> None:
    secret = secrets.token_hex(50)  # 100 characters
    register_secret(secret)
    out = safe(secret * 30, limit=200)
    for i in range(len(out) - 8):
        assert out[i : i + 8] not in secret
    assert "[REDACTED]" in out


def test_a_secret_containing_another_is_replaced_whole() -> None:
    inner = secrets.token_hex(6)
    outer = inner + secrets.token_hex(6)
    register_secret(inner)
    register_secret(outer)
    assert redact(f"[{outer}]") == "[[REDACTED]]"


def test_overlapping_secrets_are_hidden_whole() -> None:
    register_secret("OVERLAP-AAAA-1234")
    register_secret("1234-BBBB-OVERLAP")
    out = safe("x OVERLAP-AAAA-1234-BBBB-OVERLAP y OVERLAP-AAAA-1234 z")
    assert "BBBB" not in out and "AAAA" not in out and "1234" not in out
    assert out == "x [REDACTED] y [REDACTED] z"


def test_every_control_and_format_character_is_escaped() -> None:
    import sys
    import unicodedata

    unsafe = [
        chr(c)
        for c in range(sys.maxunicode + 1)
        if unicodedata.category(chr(c)) in ("Cc", "Cf", "Cs", "Zl", "Zp")
    ]
    assert len(unsafe) > 2000  # the whole set, surrogates included
    assert [hex(ord(ch)) for ch in unsafe if safe(ch) == ch] == []
