"""W2's chart: client CPU per call and wall time per client, as plain SVG (no fonts, scripts or network)."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any


def _medians(w: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(name, c.get("median", {})) for name, c in w.get("clients", {}).items()]


def chart_svg(w2: Mapping[str, Any]) -> str:
    """Two bar panels (CPU ms per call, wall seconds) of W2's medians; plain SVG, no fonts or scripts fetched."""
    data: list[tuple[str, float, float]] = []
    for name, med in _medians(w2):
        cpu, wall = med.get("cpu_ms_per_call"), med.get("wall_s")
        if isinstance(cpu, (int, float)) and isinstance(wall, (int, float)):
            data.append((name, float(cpu), float(wall)))
    bar_h, gap, label_w, panel_w, top = 22, 8, 150, 330, 50
    height = top + len(data) * (bar_h + gap) + 40
    width = label_w + 2 * panel_w + 40
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="10" y="20" font-size="14" font-weight="bold">{html.escape(w2.get("title", "W2"))} (medians)</text>',
    ]
    for p, (title, idx, unit) in enumerate((("client CPU per call", 1, "ms"), ("wall time", 2, "s"))):
        x0 = label_w + p * panel_w
        parts.append(f'<text x="{x0}" y="{top - 12}" font-weight="bold">{title} ({unit})</text>')
        values = [d[1] if idx == 1 else d[2] for d in data]
        peak = max(values, default=1.0) or 1.0
        for i, (row, value) in enumerate(zip(data, values, strict=True)):
            y = top + i * (bar_h + gap)
            w = max(1.0, (panel_w - 70) * value / peak)
            color = "#d9480f" if row[0] == "claude_force" else ("#2b8a3e" if row[0] == "floor" else "#5c7cfa")
            parts.append(f'<rect x="{x0}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{color}"/>')
            parts.append(f'<text x="{x0 + w + 4:.1f}" y="{y + bar_h - 6}">{value:.2f}</text>')
    for i, row in enumerate(data):
        y = top + i * (bar_h + gap) + bar_h - 6
        parts.append(f'<text x="10" y="{y}">{html.escape(row[0])}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
