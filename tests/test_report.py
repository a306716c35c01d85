from __future__ import annotations

import random
import re
import shutil
import struct
import subprocess
import time
import zlib
from pathlib import Path

import pytest

from claude_force.tracking import PerformanceTracker, Record
from claude_force.tracking.report import latency_bins, render_report

EVIL = '<img src=x onerror=alert(1)></svg><script>alert("x")</script>'
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]


def make_records(n: int = 600) -> list[Record]:
    rng = random.Random(5)
    agents = ["code-reviewer", "bug-investigator", EVIL]
    models = ["claude-sonnet-5-5", "claude-haiku-4-5"]
    out = []
    for i in range(n):
        ok = rng.random() > 0.15
        out.append(
            Record(
                ts=1_764_000_000.0 + i * 30.0,
                agent=agents[i % 3],
                model=models[i % 2],
                success=ok,
                error_code=None if ok else "overloaded",
                latency_ms=rng.lognormvariate(5.5, 0.6),
                attempts=1 if ok else 3,
                input_tokens=rng.randint(50, 500),
                output_tokens=rng.randint(20, 400),
                cache_creation_input_tokens=2_000 if i < 3 else 0,
                cache_read_input_tokens=0 if i < 3 else 2_000,
                cost_usd=None if i % 50 == 0 else rng.uniform(0.0005, 0.01),
                cached=rng.random() < 0.25,
                coalesced=False,
                workflow=None,
                position=None,
            )
        )
    return out


def chromium() -> str:
    exe = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if exe is None:
        pytest.fail(
            "chromium is not installed: the HTML report test needs a real headless browser. "
            "Run scripts/test-services.sh (or: apt-get install -y chromium)."
        )
    return exe


def run_chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args]
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, check=False)


def png_pixels(data: bytes) -> tuple[int, int, list[tuple[int, int, int]]]:
    """Decode an 8-bit, non-interlaced RGB/RGBA PNG (what Chromium writes) into RGB pixels."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, bpp = 8, b"", 0, 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and color in (2, 6) and body[12] == 0
            bpp = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    low = int.from_bytes(b"\x7f" * stride, "big")
    high = int.from_bytes(b"\x80" * stride, "big")
    prev = bytearray(stride)
    pixels: list[tuple[int, int, int]] = []
    for y in range(height):
        ftype = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        if ftype == 2:  # "Up": add the row above bytewise, mod 256, all bytes at once (SWAR on big ints)
            a, b = int.from_bytes(line, "big"), int.from_bytes(prev, "big")
            line = bytearray((((a & low) + (b & low)) ^ ((a ^ b) & high)).to_bytes(stride, "big"))
            ftype = 0
        for x in range(stride if ftype else 0):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if ftype == 1:
                line[x] = (line[x] + a) & 0xFF
            elif ftype == 2:
                line[x] = (line[x] + b) & 0xFF
            elif ftype == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[x] = (line[x] + pred) & 0xFF
        pixels.extend((line[i], line[i + 1], line[i + 2]) for i in range(0, stride, bpp))
        prev = line
    return width, height, pixels


# --- pure rendering ----------------------------------------------------------------------------------------


def test_report_is_self_contained_and_escaped() -> None:
    page = render_report(make_records(), title="nightly <run>", generated_at=0.0)
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page and "<img" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "nightly &lt;run&gt;" in page
    # Nothing can be fetched: no URLs, no src/href attributes, and a CSP that forbids loading anything.
    assert not re.search(r"https?://|\bsrc=\"|\bhref=|@import|url\(", page)
    assert "default-src 'none'" in page
    assert page.count("<svg") == 6


def test_empty_report_renders() -> None:
    page = render_report([], generated_at=0.0)
    assert page.count("No data.") == 6
    assert "<svg" not in page


def test_latency_bins_cover_every_task() -> None:
    t = PerformanceTracker.from_records(make_records(300))
    bins = latency_bins(t.latency_histogram())
    assert 1 < len(bins) <= 30
    assert sum(c for _, c in bins) == 300


# --- in a real browser -------------------------------------------------------------------------------------


def test_report_renders_charts_in_headless_chromium(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render_report(make_records(), generated_at=0.0), encoding="utf-8")

    dom = run_chromium(tmp_path, "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert html.count("<svg") == 6
    bars = re.findall(r'<rect class="bar"[^>]*?width="([\d.]+)" height="([\d.]+)"', html)
    nonzero = [(w, h) for w, h in bars if float(w) > 0 and float(h) > 0]
    assert len(nonzero) > 40
    # The hostile agent name is text, not markup, after the browser parsed it.
    assert "<img" not in html and "<script" not in html
    assert "&lt;script&gt;alert" in html

    shot = tmp_path / "shot.png"
    res = run_chromium(
        tmp_path, "--hide-scrollbars", "--window-size=800,1400", f"--screenshot={shot}", page.as_uri()
    )
    assert res.returncode == 0 and shot.exists(), res.stderr[-2000:]
    width, height, pixels = png_pixels(shot.read_bytes())
    assert (width, height) == (800, 1400)
    # Bars are drawn in the palette's blue (#3b6fd8): count pixels close to it.
    blue = sum(1 for r, g, b in pixels if abs(r - 59) < 25 and abs(g - 111) < 25 and abs(b - 216) < 25)
    assert blue > 2_000, blue


def test_absurd_timestamp_stays_off_the_timeline() -> None:
    # The disk is untrusted: a record claiming ts=1e300 used to crash time.gmtime with OverflowError.
    good = make_records(4)
    absurd = good[0]._replace(ts=1e300, agent="absurd-ts-agent")
    page = render_report([*good, absurd], generated_at=0)
    assert "<b>5</b><span>tasks</span>" in page  # still counted in the totals
    assert "absurd-ts-agent" in page
    assert time.strftime("%m-%d", time.gmtime(good[0].ts)) in page  # the timeline is the good records' span
