"""Cache-dir safety: symlinks on the dir, a component or the database file; owner and mode; creation modes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from claude_force.cache import ResponseCache
from claude_force.cache.dirs import DB_NAME, check_db_file, default_cache_dir, ensure_cache_dir
from claude_force.errors import UnsafeCacheDir
from claude_force.models import Response, Usage

SECRET = "dirs-test-secret-0123456789abcdef-xyz"


def mode(p: Path) -> int:
    return stat.S_IMODE(os.lstat(p).st_mode)


def test_default_is_the_platform_user_cache_dir() -> None:
    assert default_cache_dir().name == "claude-force" or "claude-force" in str(default_cache_dir())


def test_creates_missing_components_0700(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "cache"
    got = ensure_cache_dir(target, home=tmp_path / "not-home")
    assert got == target
    for p in (tmp_path / "a", tmp_path / "a" / "b", target):
        assert p.is_dir()
        assert mode(p) == 0o700


def test_relative_and_dotdot_paths_are_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    got = ensure_cache_dir(Path("x/../cache"), home=tmp_path / "elsewhere")
    assert got == tmp_path / "cache"
    assert got.is_absolute()


def test_existing_safe_dir_is_accepted(tmp_path: Path) -> None:
    target = tmp_path / "cache"
    target.mkdir(mode=0o755)
    os.chmod(target, 0o755)  # readable by others is fine: the files inside are 0600
    assert ensure_cache_dir(target) == target


def test_cache_dir_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "cache"
    link.symlink_to(real)
    with pytest.raises(UnsafeCacheDir, match="cache dir is a symlink"):
        ensure_cache_dir(link)


def test_dangling_symlink_as_cache_dir_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "cache"
    link.symlink_to(tmp_path / "does-not-exist")
    with pytest.raises(UnsafeCacheDir, match="symlink"):
        ensure_cache_dir(link)


def test_symlinked_component_below_home_is_refused(tmp_path: Path) -> None:
    # Under the home directory every component below home is checked, existing or not.
    home = tmp_path / "home"
    elsewhere = tmp_path / "attacker"
    (elsewhere / "stuff").mkdir(parents=True)
    home.mkdir()
    (home / ".cache").symlink_to(elsewhere)
    with pytest.raises(UnsafeCacheDir, match=r"component .*\.cache is a symlink"):
        ensure_cache_dir(home / ".cache" / "claude-force", home=home)


def test_home_itself_may_be_a_symlink(tmp_path: Path) -> None:
    real_home = tmp_path / "real-home"
    real_home.mkdir()
    home = tmp_path / "home"
    home.symlink_to(real_home)
    got = ensure_cache_dir(home / ".cache" / "claude-force", home=home)
    assert (real_home / ".cache" / "claude-force").is_dir()
    assert got == home / ".cache" / "claude-force"


def test_default_home_is_the_real_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "h"
    home.mkdir()
    (home / "link").symlink_to(tmp_path)
    monkeypatch.setenv("HOME", str(home))
    with pytest.raises(UnsafeCacheDir, match="component"):
        ensure_cache_dir(home / "link" / "cache")


def test_component_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(UnsafeCacheDir):
        ensure_cache_dir(tmp_path / "file" / "cache")


def test_dir_owned_by_someone_else_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "cache"
    target.mkdir(mode=0o700)
    os.chown(target, 4242, 4242)  # the tests run as root, so chown works
    with pytest.raises(UnsafeCacheDir, match="owned by uid 4242"):
        ensure_cache_dir(target)


@pytest.mark.parametrize("bad_mode", [0o777, 0o770, 0o702])
def test_group_or_world_writable_dir_is_refused(tmp_path: Path, bad_mode: int) -> None:
    target = tmp_path / "cache"
    target.mkdir()
    os.chmod(target, bad_mode)
    with pytest.raises(UnsafeCacheDir, match=f"mode {oct(bad_mode)} .*group/world-writable"):
        ensure_cache_dir(target)


def test_symlinked_database_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "cache"
    target.mkdir(mode=0o700)
    victim = tmp_path / "victim.sqlite3"
    victim.write_bytes(b"")
    (target / DB_NAME).symlink_to(victim)
    with pytest.raises(UnsafeCacheDir, match=r"database file cache\.sqlite3 is a symlink"):
        ResponseCache(cache_dir=target, secret=SECRET)
    assert victim.read_bytes() == b""


@pytest.mark.parametrize("suffix", ["-wal", "-shm"])
def test_symlinked_wal_or_shm_file_is_refused(tmp_path: Path, suffix: str) -> None:
    target = tmp_path / "cache"
    target.mkdir(mode=0o700)
    (target / f"{DB_NAME}{suffix}").symlink_to(tmp_path / "victim")
    with pytest.raises(UnsafeCacheDir, match="symlink"):
        check_db_file(target / DB_NAME)


def test_database_owned_by_someone_else_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "cache"
    target.mkdir(mode=0o700)
    db = target / DB_NAME
    db.write_bytes(b"")
    os.chown(db, 4242, 4242)
    with pytest.raises(UnsafeCacheDir, match="owned by uid 4242"):
        check_db_file(db)


def test_database_and_side_files_are_0600(tmp_path: Path) -> None:
    target = tmp_path / "cache"
    with ResponseCache(cache_dir=target, secret=SECRET) as cache:
        cache.set("k", Response(text="t", model="m", usage=Usage()), agent="a")
        files = sorted(p.name for p in target.iterdir())
        assert DB_NAME in files
        for name in files:
            assert mode(target / name) == 0o600, name
    assert mode(target) == 0o700


def test_loose_database_mode_is_tightened(tmp_path: Path) -> None:
    target = tmp_path / "cache"
    target.mkdir(mode=0o700)
    db = target / DB_NAME
    db.write_bytes(b"")
    os.chmod(db, 0o644)
    check_db_file(db)
    assert mode(db) == 0o600
