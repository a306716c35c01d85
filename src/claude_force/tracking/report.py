"""One self-contained HTML report with inline SVG charts: no scripts, fonts, images or network fetches.

Every user-controlled string (agent and model names, error codes) is passed through ``html.escape``; a
Content-Security-Policy meta tag forbids loading anything even if a string slipped through.
"""

from __future__ import annotations

import html
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from claude_force.security.sanitize import safe
from claude_force.tracking.aggregate import GroupStats
from claude_force.tracking.histogram import LogHistogram
from claude_force.tracking.sink import Record
from claude_force.tracking.tracker import PerformanceTracker

#: Nothing may be loaded: no scripts, images, fonts or connections; only the inline stylesheet.
CSP = "default-src 'none'; style-src 'unsafe-inline'"
MAX_ROWS = 30
LABEL_CHARS = 28
TIME_BINS = 48
HIST_BINS = 30
#: Latest timestamp placed on the time charts (9999-12-31, the last one ``time.gmtime`` formats everywhere).
#: A record claiming a later one (the disk is untrusted) still counts in every total, just not on the timeline.
MAX_TS = 253_402_300_799.0
WIDTH = 760
COLORS = ("#3b6fd8", "#e0862f", "#2f9e6e", "#b0479c")
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1d2330;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px}.meta{color:#667;font-size:12px}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin-top:14px}.card{border:1px solid #dde;border-radius:6px;
padding:8px 12px;min-width:110px}.card b{display:block;font-size:18px}.card span{font-size:11px;color:#667}
svg{display:block;max-width:100%}svg text{font-size:11px;fill:#334}.empty{color:#889;font-style:italic}
.legend span{display:inline-block;margin-right:14px;font-size:12px}.legend i{display:inline-block;width:10px;
height:10px;margin-right:4px}
"""


def _e(value: object) -> str:
    """Escape for HTML text and attributes, after neutralising control characters."""
    return html.escape(safe(value, 120), quote=True)


def _usd(v: float) -> str:
    return f"${v:,.4f}" if v < 1 else f"${v:,.2f}"


def _ms(v: float | None) -> str:
    return "-" if v is None else (f"{v:,.0f} ms" if v >= 100 else f"{v:,.1f} ms")


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.1f}%"


# --- charts -------------------------------------------------------------------------------------------------


def hbar_chart(
    rows: Sequence[tuple[str, Sequence[tuple[float, str]]]], *, series: Sequence[str] = ("",)
) -> str:
    """Horizontal bars: one group per row ``(label, [(value, display text) per series])``."""
    if not rows:
        return '<p class="empty">No data.</p>'
    label_w, bar_h, gap = 180, 14, 8
    group_h = bar_h * len(series) + gap
    peak = max((v for _, vals in rows for v, _ in vals), default=0.0) or 1.0
    plot_w = WIDTH - label_w - 110
    height = group_h * len(rows) + 10
    parts = [
        f'<svg class="chart" role="img" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}">'
    ]
    for i, (label, values) in enumerate(rows):
        y0 = 5 + i * group_h
        mid = y0 + bar_h * len(series) / 2 + 4
        short = label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "\u2026"
        parts.append(
            f'<text x="{label_w - 6}" y="{mid:.1f}" text-anchor="end">{_e(short)}<title>{_e(label)}</title></text>'
        )
        for j, (v, text) in enumerate(values):
            w = max(1.0, plot_w * v / peak) if v > 0 else 0.0
            y = y0 + j * bar_h
            tip = f"{label} {series[j]}: {text}" if series[j] else f"{label}: {text}"
            parts.append(
                f'<rect class="bar" x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h - 2}" '
                f'fill="{COLORS[j % len(COLORS)]}"><title>{_e(tip)}</title></rect>'
                f'<text x="{label_w + w + 4:.1f}" y="{y + bar_h - 4}">{_e(text)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def vbar_chart(
    bins: Sequence[tuple[str, Sequence[float]]],
    *,
    series: Sequence[str],
    y_max: float | None = None,
    y_fmt: str = "{:.0%}",
) -> str:
    """Vertical bars over an ordered axis (time or latency buckets); values per series side by side."""
    if not bins:
        return '<p class="empty">No data.</p>'
    left, bottom, top, height = 50, 40, 10, 220
    plot_w, plot_h = WIDTH - left - 10, height - bottom - top
    peak = y_max if y_max is not None else (max((v for _, vals in bins for v in vals), default=0.0) or 1.0)
    slot = plot_w / len(bins)
    bar_w = max(1.0, (slot - 2) / len(series))
    parts = [
        f'<svg class="chart" role="img" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}">'
    ]
    base = top + plot_h
    parts.append(f'<line x1="{left}" y1="{base}" x2="{left + plot_w}" y2="{base}" stroke="#99a"/>')
    parts.append(f'<text x="{left - 4}" y="{top + 8}" text-anchor="end">{_e(y_fmt.format(peak))}</text>')
    parts.append(f'<text x="{left - 4}" y="{base}" text-anchor="end">{_e(y_fmt.format(0))}</text>')
    step = max(1, len(bins) // 8)
    for i, (label, values) in enumerate(bins):
        x0 = left + i * slot + 1
        for j, v in enumerate(values):
            h = plot_h * min(v, peak) / peak if v > 0 else 0.0
            tip = f"{label} {series[j]}: {y_fmt.format(v)}".replace("  ", " ")
            parts.append(
                f'<rect class="bar" x="{x0 + j * bar_w:.1f}" y="{base - h:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}" fill="{COLORS[j % len(COLORS)]}"><title>{_e(tip)}</title></rect>'
            )
        if i % step == 0 and x0 + 8 * len(label) < WIDTH:  # a label that would be cut off is left out
            parts.append(f'<text x="{x0:.1f}" y="{base + 14}">{_e(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _legend(series: Sequence[str]) -> str:
    items = "".join(
        f'<span><i style="background:{COLORS[j % len(COLORS)]}"></i>{_e(s)}</span>'
        for j, s in enumerate(series)
    )
    return f'<div class="legend">{items}</div>'


def latency_bins(h: LogHistogram, n: int = HIST_BINS) -> list[tuple[str, float]]:
    """Regroup a histogram's log buckets into at most ``n`` log-spaced display bins: (label, count)."""
    buckets = list(h.buckets())
    if not buckets:
        return []
    lo = max(min(b[1] for b in buckets), 1e-3)
    hi = max(b[1] for b in buckets)
    if hi <= lo * 1.0001:
        return [(_ms(hi), float(sum(b[2] for b in buckets)))]
    ratio = (hi / lo) ** (1.0 / n)
    edges = [lo * ratio**i for i in range(n + 1)]
    counts = [0.0] * n
    for _, upper, count in buckets:
        idx = 0 if upper <= lo else min(n - 1, int(math.log(upper / lo) / math.log(ratio) - 1e-9))
        counts[idx] += count
    return [(f"<={_ms(edges[i + 1])}", counts[i]) for i in range(n)]


# --- the report ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Bin:
    count: int = 0
    ok: int = 0
    cached: int = 0
    read: int = 0
    prompt: int = 0


class ReportBuilder:
    """Collect records in one pass (aggregates plus per-minute bins), then render.

    Example::

        builder = ReportBuilder()
        for rec in load_records(".claude/metrics"):
            builder.add(rec)
        Path("report.html").write_text(builder.render(title="nightly run"), encoding="utf-8")
    """

    __slots__ = ("_minutes", "_tracker")

    def __init__(self) -> None:
        self._tracker = PerformanceTracker(ring_size=1)
        self._minutes: dict[int, _Bin] = {}

    def add(self, rec: Record) -> None:
        self._tracker.add(rec)
        if not 0.0 <= rec.ts <= MAX_TS:  # also false for NaN
            return
        minute = int(rec.ts // 60)
        b = self._minutes.get(minute)
        if b is None:
            b = self._minutes[minute] = _Bin()
        b.count += 1
        b.ok += rec.success
        b.cached += rec.cached
        b.read += rec.cache_read_input_tokens
        b.prompt += rec.input_tokens + rec.cache_read_input_tokens + rec.cache_creation_input_tokens

    def _time_bins(self) -> list[tuple[str, _Bin]]:
        if not self._minutes:
            return []
        first, last = min(self._minutes), max(self._minutes)
        width = max(1, math.ceil((last - first + 1) / TIME_BINS))
        merged: dict[int, _Bin] = {}
        for minute, b in self._minutes.items():
            m = merged.setdefault((minute - first) // width, _Bin())
            m.count += b.count
            m.ok += b.ok
            m.cached += b.cached
            m.read += b.read
            m.prompt += b.prompt
        out = []
        for idx in sorted(merged):
            label = time.strftime("%m-%d %H:%M", time.gmtime((first + idx * width) * 60))
            out.append((label, merged[idx]))
        return out

    def render(self, *, title: str = "claude-force metrics", generated_at: float | None = None) -> str:
        t = self._tracker
        total = t.summary().total
        agents = sorted(t.by_agent(), key=lambda g: (-g.count, g.name))[:MAX_ROWS]
        costs = t.costs()
        bins = self._time_bins()
        when = time.strftime(
            "%Y-%m-%d %H:%M UTC", time.gmtime(time.time() if generated_at is None else generated_at)
        )
        lat = total.latency
        cards = [
            ("tasks", f"{total.count:,}"),
            ("success rate", _pct(total.success_rate)),
            ("cost", _usd(total.cost_usd) + (f" (+{total.unpriced} unpriced)" if total.unpriced else "")),
            ("p50 / p95 / p99", f"{_ms(lat.p50_ms)} / {_ms(lat.p95_ms)} / {_ms(lat.p99_ms)}"),
            ("response-cache hits", _pct(total.cache_hit_rate)),
            ("prompt-cache read share", _pct(total.prompt_cache_read_share)),
            ("tokens in / out", f"{total.input_tokens:,} / {total.output_tokens:,}"),
        ]
        pct_series = ("p50", "p95", "p99")
        sections = [
            (
                "Latency distribution (tasks per bucket)",
                vbar_chart(
                    [(lbl, (c,)) for lbl, c in latency_bins(t.latency_histogram())],
                    series=("tasks",),
                    y_fmt="{:,.0f}",
                ),
            ),
            (
                "Latency percentiles per agent",
                _legend(pct_series)
                + hbar_chart(
                    [(g.name, [(v or 0.0, _ms(v)) for v in _pcts(g)]) for g in agents], series=pct_series
                ),
            ),
            (
                "Cost by agent",
                hbar_chart(
                    [
                        (c.name, [(c.cost_usd, f"{_usd(c.cost_usd)} ({c.count} tasks)")])
                        for c in costs.by_agent[:MAX_ROWS]
                    ]
                ),
            ),
            (
                "Cost by model",
                hbar_chart(
                    [
                        (c.name or "(none)", [(c.cost_usd, f"{_usd(c.cost_usd)} ({c.count} tasks)")])
                        for c in costs.by_model[:MAX_ROWS]
                    ]
                ),
            ),
            (
                "Success rate over time",
                vbar_chart([(lbl, (b.ok / b.count,)) for lbl, b in bins], series=("success",), y_max=1.0),
            ),
            (
                "Cache hit rate over time",
                _legend(("response cache", "prompt-cache reads"))
                + vbar_chart(
                    [(lbl, (b.cached / b.count, b.read / b.prompt if b.prompt else 0.0)) for lbl, b in bins],
                    series=("response cache", "prompt-cache reads"),
                    y_max=1.0,
                ),
            ),
        ]
        body = "".join(f"<section><h2>{_e(h)}</h2>{chart}</section>" for h, chart in sections)
        card_html = "".join(f'<div class="card"><b>{_e(v)}</b><span>{_e(k)}</span></div>' for k, v in cards)
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
            f'<h1>{_e(title)}</h1><div class="meta">generated {_e(when)} · {len(t.by_agent())} agents · '
            f'{len(t.by_model())} models</div><div class="cards">{card_html}</div>{body}</body></html>\n'
        )


def _pcts(g: GroupStats) -> tuple[float | None, float | None, float | None]:
    lat = g.latency
    return (lat.p50_ms, lat.p95_ms, lat.p99_ms)


def render_report(
    records: Iterable[Record], *, title: str = "claude-force metrics", generated_at: float | None = None
) -> str:
    """The HTML report for ``records`` (e.g. ``load_records(sink_dir)``)."""
    builder = ReportBuilder()
    for rec in records:
        builder.add(rec)
    return builder.render(title=title, generated_at=generated_at)
