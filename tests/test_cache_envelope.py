"""Signed envelopes: every field is covered by the MAC; tampered, truncated and garbage rows are never served.

Tampering is done the way an attacker would: by writing straight into the SQLite file with ``sqlite3``.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest

from claude_force.cache import ResponseCache
from claude_force.cache.dirs import DB_NAME
from claude_force.cache.envelope import FORMAT_VERSION, MAC_BYTES, mac_of, open_envelope, seal
from claude_force.errors import CacheIntegrityError
from claude_force.models import Response, Usage

SECRET = "envelope-test-secret-0123456789abcdef"
KEY = "a" * 64


def resp(text: str = "hello world") -> Response:
    return Response(text=text, model="m", usage=Usage(5, 7), stop_reason="end_turn", message_id="msg_1")


# --- the envelope alone -------------------------------------------------------------------------


def row_of(env: Any) -> tuple[Any, ...]:
    return (env.version, env.key, env.agent, env.created, env.expires, env.payload, env.mac)


def test_seal_then_open_round_trips() -> None:
    env = seal(SECRET.encode(), key=KEY, agent="a", created=1.0, expires=2.0, payload=b'{"x":1}')
    assert len(env.mac) == MAC_BYTES
    assert open_envelope(SECRET.encode(), row_of(env), expect_key=KEY) == env
    assert "payload=7 bytes" in repr(env)
    assert "x" not in repr(env).split("payload=")[1]


@pytest.mark.parametrize(
    ("index", "value", "reason"),
    [
        (0, FORMAT_VERSION + 1, "version"),
        (0, True, "version"),
        (1, "b" * 64, "key"),
        (2, "other-agent", "MAC"),
        (3, 1.5, "MAC"),
        (4, 99.0, "MAC"),
        (5, b'{"x":2}', "MAC"),
        (6, b"\x00" * MAC_BYTES, "MAC"),
        (6, b"\x00" * 16, "length"),
        (3, "1.0", "numbers"),
        (4, float("nan"), "numbers"),
        (5, '{"x":1}', "binary"),
        (1, 12, "text"),
    ],
)
def test_every_field_is_checked(index: int, value: Any, reason: str) -> None:
    env = seal(SECRET.encode(), key=KEY, agent="a", created=1.0, expires=2.0, payload=b'{"x":1}')
    row = list(row_of(env))
    row[index] = value
    with pytest.raises(CacheIntegrityError, match=reason):
        open_envelope(SECRET.encode(), tuple(row), expect_key=KEY)


def test_wrong_secret_fails() -> None:
    env = seal(SECRET.encode(), key=KEY, agent="a", created=1.0, expires=2.0, payload=b"{}")
    with pytest.raises(CacheIntegrityError, match="MAC"):
        open_envelope(b"another-secret-that-is-32-bytes-long!", row_of(env), expect_key=KEY)


def test_length_prefixes_make_the_encoding_unambiguous() -> None:
    # Moving bytes between adjacent fields must change the MAC.
    s = SECRET.encode()
    one = mac_of(s, version=1, key="ab", agent="c", created=0.0, expires=0.0, payload=b"")
    two = mac_of(s, version=1, key="a", agent="bc", created=0.0, expires=0.0, payload=b"")
    assert one != two


def test_wrong_row_width_fails() -> None:
    with pytest.raises(CacheIntegrityError, match="number of fields"):
        open_envelope(SECRET.encode(), (1, KEY), expect_key=KEY)


# --- tampering with the database ------------------------------------------------------------------


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def written(cache_dir: Path) -> Path:
    with ResponseCache(cache_dir=cache_dir, secret=SECRET) as cache:
        assert cache.set(KEY, resp(), agent="reviewer")
    return cache_dir / DB_NAME


def raw(db: Path, sql: str, *args: Any) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute(sql, args)
    finally:
        conn.close()


def count_rows(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0])
    finally:
        conn.close()


def payload_of(db: Path) -> bytes:
    conn = sqlite3.connect(db)
    try:
        return bytes(conn.execute("SELECT payload FROM entries").fetchone()[0])
    finally:
        conn.close()


def fresh_get(cache_dir: Path, key: str = KEY) -> tuple[Response | None, int]:
    # A new instance has an empty memory tier, so the read must come from disk.
    with ResponseCache(cache_dir=cache_dir, secret=SECRET) as cache:
        got = cache.get(key)
        return got, cache.stats().integrity_failures


def test_untampered_entry_is_served_from_disk(written: Path, cache_dir: Path) -> None:
    got, failures = fresh_get(cache_dir)
    assert got == resp()
    assert failures == 0


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE entries SET version = 2",
        "UPDATE entries SET agent = 'someone-else'",
        "UPDATE entries SET created = created + 1",
        "UPDATE entries SET expires = expires + 86400 * 365",
        "UPDATE entries SET mac = zeroblob(32)",
        "UPDATE entries SET mac = substr(mac, 1, 16)",
        "UPDATE entries SET payload = substr(payload, 1, 10)",
        "UPDATE entries SET payload = CAST(payload AS TEXT)",
        "UPDATE entries SET created = 'yesterday'",
        "UPDATE entries SET payload = randomblob(200), mac = randomblob(32)",
    ],
)
def test_tampered_field_is_deleted_counted_and_never_served(written: Path, cache_dir: Path, sql: str) -> None:
    raw(written, sql)
    got, failures = fresh_get(cache_dir)
    assert got is None
    assert failures == 1
    assert count_rows(written) == 0  # deleted, so it cannot be retried either


def test_payload_rewritten_to_other_valid_json_is_caught_by_the_mac(written: Path, cache_dir: Path) -> None:
    forged = payload_of(written).replace(b"hello world", b"rm -rf / ok")
    assert orjson.loads(forged)["text"] == "rm -rf / ok"
    raw(written, "UPDATE entries SET payload = ?", forged)
    got, failures = fresh_get(cache_dir)
    assert got is None
    assert failures == 1


def test_row_moved_to_another_key_is_caught(written: Path, cache_dir: Path) -> None:
    other = "b" * 64
    raw(written, "UPDATE entries SET key = ?", other)
    got, failures = fresh_get(cache_dir, other)
    assert got is None
    assert failures == 1


def test_row_signed_with_another_secret_is_not_served(cache_dir: Path) -> None:
    with ResponseCache(cache_dir=cache_dir, secret="a-different-secret-0123456789abcdef") as cache:
        cache.set(KEY, resp(), agent="a")
    got, failures = fresh_get(cache_dir)
    assert got is None
    assert failures == 1


@pytest.mark.parametrize("payload", [b"not json at all", b"[1, 2]", b'{"text": 1}', b'{"model": "m"}'])
def test_validly_signed_but_malformed_payload_is_an_integrity_failure(
    written: Path, cache_dir: Path, payload: bytes
) -> None:
    # Someone holding the secret (or a bug) signed a bad payload: the shape check still refuses it.
    env = seal(SECRET.encode(), key=KEY, agent="reviewer", created=1e12, expires=2e12, payload=payload)
    raw(
        written,
        "UPDATE entries SET created = ?, expires = ?, payload = ?, mac = ?",
        1e12,
        2e12,
        payload,
        env.mac,
    )
    with ResponseCache(cache_dir=cache_dir, secret=SECRET, clock=lambda: 1.5e12) as cache:
        assert cache.get(KEY) is None
        assert cache.stats().integrity_failures == 1
    assert count_rows(written) == 0


def test_garbage_rows_are_found_and_deleted_by_verify(written: Path, cache_dir: Path) -> None:
    for i in range(3):
        raw(
            written,
            "INSERT INTO entries (key, agent, version, created, expires, last_access, size, payload, mac)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            f"garbage-{i}",
            "x",
            i,
            "nan",
            b"\xff",
            0,
            10,
            os.urandom(50),
            os.urandom(32),
        )
    raw(
        written,
        "INSERT INTO entries (key, agent, version, created, expires, last_access, size, payload, mac)"
        " VALUES (X'00', 'x', 1, 0, 0, 0, 1, X'00', X'00')",
    )
    with ResponseCache(cache_dir=cache_dir, secret=SECRET) as cache:
        report = cache.verify()
        assert (report.checked, report.ok, report.corrupt) == (5, 1, 4)
        assert not report.clean
        assert cache.stats().integrity_failures == 4
        assert cache.stats().entries == 1
        assert cache.get(KEY) == resp()
        assert cache.verify().clean
    assert count_rows(written) == 1


def test_a_fresh_rewrite_is_not_deleted_by_a_stale_integrity_failure(written: Path, cache_dir: Path) -> None:
    # The delete after a failed check only removes the row it checked (matched by its MAC).
    with ResponseCache(cache_dir=cache_dir, secret=SECRET) as cache:
        store = cache._store
        assert store is not None
        assert store.delete(KEY, mac=b"\x00" * 32) is False
        assert count_rows(written) == 1
