"""Server-rendered SVG timeline: events per signature over time and over training steps.

Pure function of the data, no JavaScript needed: each panel is a small multi-series line chart
(one line per signature, a dot per non-empty bin with a <title> tooltip and data-* attributes).
The count axis is logarithmic: a storm of 1,200 events beside the one Xid that caused it must
not flatten the cause's line to zero (one event sits at a visible height; ticks 1, 10, 100 …).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from math import log10

from markupsafe import Markup

__all__ = ["timeline_svg", "PALETTE"]

PALETTE = ["#4e79a7", "#e15759", "#59a14f", "#f28e2b", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7", "#9c755f", "#bab0ac"]
BINS = 40
W, PANEL_H, PAD_L, PAD_R, PAD_T, PAD_B = 820, 190, 56, 16, 28, 34


def _e(v: object) -> str:
    # HTML/SVG attribute escaping (the chart is markup), not the mrkdwn escape of incidentbot.blocks.
    return escape(str(v), quote=True)


def _fmt_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%m-%d %H:%M")


def _bins(values: Sequence[float], lo: float, hi: float) -> list[int]:
    counts = [0] * BINS
    span = (hi - lo) or 1.0
    for v in values:
        i = int((v - lo) / span * BINS)
        counts[min(max(i, 0), BINS - 1)] += 1
    return counts


def _height(count: int, peak: int) -> float:
    """Share of the plot height for ``count`` on a log scale (0 → 0, peak → 1)."""
    return log10(1 + count) / log10(1 + peak) if count > 0 and peak > 0 else 0.0


def _log_ticks(peak: int) -> list[int]:
    """1, 10, 100 … up to the peak, and the peak itself."""
    ticks, t = [], 1
    while t < peak:
        ticks.append(t)
        t *= 10
    return ticks + [peak]


def _panel(out: list[str], *, y0: int, title: str, axis: str, series: list[tuple[str, str, list[float]]], fmt) -> None:
    """One panel at vertical offset y0. series: (signature id, colour, values)."""
    plot_w, plot_h = W - PAD_L - PAD_R, PANEL_H - PAD_T - PAD_B
    top = y0 + PAD_T
    out.append(f'<g class="panel" data-axis="{_e(axis)}" data-scale="log">')
    out.append(f'<text class="panel-title" x="{PAD_L}" y="{y0 + 16}">{_e(title)}</text>')
    everything = [v for _, _, vals in series for v in vals]
    if not everything:
        out.append(f'<text class="empty" x="{PAD_L + 8}" y="{top + plot_h / 2:.0f}">no {_e(axis)} data</text></g>')
        return
    lo, hi = min(everything), max(everything)
    if hi == lo:
        lo, hi = lo - 1, hi + 1
    binned = [(sid, colour, _bins(vals, lo, hi)) for sid, colour, vals in series]
    peak = max(max(c) for _, _, c in binned) or 1
    # axes and grid
    out.append(f'<line class="axis" x1="{PAD_L}" y1="{top + plot_h}" x2="{PAD_L + plot_w}" y2="{top + plot_h}"/>')
    out.append(f'<line class="axis" x1="{PAD_L}" y1="{top}" x2="{PAD_L}" y2="{top + plot_h}"/>')
    for tick in _log_ticks(peak):
        y = top + plot_h - _height(tick, peak) * plot_h
        out.append(f'<line class="grid" x1="{PAD_L}" y1="{y:.1f}" x2="{PAD_L + plot_w}" y2="{y:.1f}"/>')
        out.append(f'<text class="tick" x="{PAD_L - 6}" y="{y + 4:.1f}" text-anchor="end">{_e(f"{tick:,}")}</text>')
    out.append(f'<text class="tick" x="{PAD_L - 6}" y="{top + plot_h + 4}" text-anchor="end">0</text>')
    for frac, anchor in ((0.0, "start"), (0.5, "middle"), (1.0, "end")):
        x = PAD_L + frac * plot_w
        out.append(
            f'<text class="tick" x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="{anchor}">{_e(fmt(lo + frac * (hi - lo)))}</text>'
        )
    out.append(
        f'<text class="axis-label" x="{PAD_L + plot_w / 2:.1f}" y="{top + plot_h + 30}" text-anchor="middle">{_e(axis)}</text>'
    )
    step_w = plot_w / BINS
    for sid, colour, counts in binned:
        pts = []
        for i, c in enumerate(counts):
            x = PAD_L + (i + 0.5) * step_w
            y = top + plot_h - _height(c, peak) * plot_h
            pts.append((x, y, c, i))
        out.append(
            f'<polyline class="series" data-signature="{_e(sid)}" fill="none" stroke="{colour}" stroke-width="1.5" '
            f'points="{" ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in pts)}"/>'
        )
        for x, y, c, i in pts:
            if not c:
                continue
            b_lo = lo + i * (hi - lo) / BINS
            b_hi = lo + (i + 1) * (hi - lo) / BINS
            out.append(
                f'<circle class="pt" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}" data-signature="{_e(sid)}" '
                f'data-axis="{_e(axis)}" data-count="{c}" data-from="{_e(fmt(b_lo))}" data-to="{_e(fmt(b_hi))}">'
                f"<title>{_e(sid)}: {c} events, {_e(fmt(b_lo))} – {_e(fmt(b_hi))}</title></circle>"
            )
    out.append("</g>")


def timeline_svg(
    points: Mapping[str, Sequence[tuple[datetime, int | None]]],
    *,
    titles: Mapping[str, str] | None = None,
    standalone: bool = False,
) -> Markup:
    """`points`: signature id → [(event time, step or None)]. Returns one <svg> with two panels."""
    titles = titles or {}
    sids = list(points)
    colours = {sid: PALETTE[i % len(PALETTE)] for i, sid in enumerate(sids)}
    legend_rows = (len(sids) + 2) // 3
    height = 2 * PANEL_H + 12 + legend_rows * 18
    ns = ' xmlns="http://www.w3.org/2000/svg"' if standalone else ""
    total = sum(len(v) for v in points.values())
    out = [
        f'<svg{ns} class="timeline-chart" role="img" viewBox="0 0 {W} {height}" width="{W}" height="{height}" '
        f'data-events="{total}" aria-label="Events per signature over time and over training steps">'
    ]
    if standalone:
        out.append(
            "<style>text{font:11px sans-serif;fill:#333}.panel-title{font-weight:bold;font-size:12px}"
            ".axis{stroke:#555}.grid{stroke:#ddd;stroke-dasharray:3 3}</style>"
        )
    time_series = [(sid, colours[sid], [t.timestamp() for t, _ in points[sid]]) for sid in sids]
    step_series = [(sid, colours[sid], [float(s) for _, s in points[sid] if s is not None]) for sid in sids]
    _panel(out, y0=0, title="Events per signature over time (UTC)", axis="time", series=time_series, fmt=_fmt_time)
    _panel(
        out,
        y0=PANEL_H,
        title="Events per signature over training steps",
        axis="step",
        series=step_series,
        fmt=lambda v: f"{int(round(v)):,}",
    )
    y = 2 * PANEL_H + 8
    for i, sid in enumerate(sids):
        col, row = i % 3, i // 3
        x, yy = PAD_L + col * 255, y + row * 18
        label = f"{sid} ({len(points[sid]):,}) {titles.get(sid, '')}"
        label = label if len(label) <= 40 else label[:39] + "…"
        out.append(
            f'<rect x="{x}" y="{yy}" width="10" height="10" fill="{colours[sid]}"/>'
            f'<text class="legend" x="{x + 14}" y="{yy + 9}">{_e(label)}</text>'
        )
    out.append("</svg>")
    return Markup("".join(out))
