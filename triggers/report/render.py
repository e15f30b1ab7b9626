"""The report as terminal tables and as one self-contained HTML page (inline SVG, no script).

The page needs nothing from the network: charts are SVG drawn here, styles inline, every
text escaped. Pure: a :class:`~.summary.Report` in, a string out.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Sequence
from typing import Final

from .summary import Report, SourceSummary

__all__ = ["html_page", "text"]

_WEEKDAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}%"


def _dur(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _num(value: float | None, fmt: str = ".1f") -> str:
    return "-" if value is None else format(value, fmt)


def _met(s: SourceSummary) -> str:
    return {True: "met", False: "BELOW", None: "-"}[s.meets_target]


def _stamp(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _source_row(s: SourceSummary) -> list[str]:
    return [
        s.source,
        s.tier,
        str(s.waits),
        f"{_pct(s.success_rate)} / {_pct(s.target)} {_met(s)}",
        f"{_dur(s.wait_p50_s)} / {_dur(s.wait_p95_s)}",
        "-" if s.trend is None else f"{s.trend:.2f}x",
        str(s.timeouts),
        _num(s.pokes_per_wait),
        s.breaker or "-",
        "-" if s.health is None else str(s.health),
        f"{_dur(s.eta_error_p50_s)} / {_pct(s.eta_coverage, 0)}",
    ]


SOURCE_HEADER: Final = (
    "source",
    "tier",
    "waits",
    "success / target",
    "wait p50 / p95",
    "trend",
    "timeouts",
    "pokes/wait",
    "breaker",
    "health",
    "ETA error p50 / in 80%",
)


def text(report: Report) -> str:
    """Return the report as terminal tables (Markdown)."""
    days = report.window_s / 86_400
    lines = [f"waitwise report: {days:g} days to {_stamp(report.now)}", ""]
    tiers = [
        [t.tier, str(t.sources), str(t.waits), _pct(t.success_rate), _pct(t.target)]
        for t in report.tiers
    ]
    lines += _table(("tier", "sources", "waits", "success rate", "target"), tiers)
    lines += ["", *_table(SOURCE_HEADER, [_source_row(s) for s in report.sources])]
    poke, reschedule = report.worker_seconds
    lines += [
        "",
        "Worker-seconds spent waiting: waitwise 0 (its sensors start and end in the triggerer); "
        f"the same waits in poke mode {poke:,.0f}, in reschedule mode {reschedule:,.0f}.",
    ]
    for s in report.sources:
        if s.timeouts:
            hours = ", ".join(f"{h:02d}h:{n}" for h, n in enumerate(s.timeouts_by_hour) if n)
            days_ = ", ".join(
                f"{_WEEKDAYS[d]}:{n}" for d, n in enumerate(s.timeouts_by_weekday) if n
            )
            lines.append(f"Timeouts of {s.source} by scheduled hour (UTC) {hours}; by day {days_}.")
    return "\n".join(lines) + "\n"


_STYLE: Final = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px}
th{background:#f3f3f3}td.below{color:#b00;font-weight:bold}svg{margin:0.5em 1em 1em 0}
.chart{display:inline-block;vertical-align:top;width:300px;margin:0 1.5em 1em 0}
.chart .label{font-size:13px;overflow-wrap:anywhere}h2{margin-top:1.5em}
"""


def html_page(report: Report) -> str:
    """Return the report as one self-contained HTML page with SVG charts."""
    e = html.escape
    days = report.window_s / 86_400
    title = f"waitwise report: {days:g} days to {_stamp(report.now)}"
    rows = []
    for s in report.sources:
        cells = [f"<td>{e(c)}</td>" for c in _source_row(s)]
        if s.meets_target is False:
            cells[3] = f'<td class="below">{e(_source_row(s)[3])}</td>'
        rows.append("<tr>" + "".join(cells) + "</tr>")
    header = "".join(f"<th>{e(h)}</th>" for h in SOURCE_HEADER)
    poke, reschedule = report.worker_seconds
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        "<h2>Success rate by tier, against its target</h2>",
        _tier_chart(report),
        "<h2>Sources</h2>",
        f'<table id="sources"><tr>{header}</tr>{"".join(rows)}</table>',
        f"<p>Worker-seconds spent waiting: waitwise <b>0</b> (its sensors start and end in the "
        f"triggerer); the same waits in poke mode <b>{poke:,.0f}</b>, in reschedule mode "
        f"<b>{reschedule:,.0f}</b>.</p>",
        "<h2>Wait time per day (p50)</h2>",
        "".join(_trend_chart(s) for s in report.sources),
        "<h2>Pokes per wait</h2>",
        _bars("pokes", [(s.source, s.pokes_per_wait or 0.0) for s in report.sources], "{:.1f}"),
        "<h2>Timeouts by scheduled hour (UTC), all sources</h2>",
        _hours(report),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _tier_chart(report: Report) -> str:
    width, bar, row = 520, 260, 28  # the label after the bar needs ~130 px
    height = row * max(len(report.tiers), 1) + 10
    out = [f'<svg id="tiers" width="{width}" height="{height}" role="img">']
    for i, t in enumerate(report.tiers):
        y = 5 + i * row
        rate = t.success_rate or 0.0
        out.append(f'<text x="0" y="{y + 16}" font-size="13">{html.escape(t.tier)}</text>')
        out.append(f'<rect x="80" y="{y}" width="{bar}" height="20" fill="#eee"/>')
        colour = "#3a7" if t.target is None or rate >= t.target else "#c33"
        out.append(
            f'<rect class="rate" x="80" y="{y}" width="{bar * rate:.1f}" height="20" '
            f'fill="{colour}"/>'
        )
        if t.target is not None:
            x = 80 + bar * t.target
            out.append(
                f'<line class="target" x1="{x:.1f}" x2="{x:.1f}" y1="{y - 2}" y2="{y + 22}" '
                'stroke="#000" stroke-width="2"/>'
            )
        out.append(
            f'<text x="{80 + bar + 6}" y="{y + 16}" font-size="12">{_pct(t.success_rate)}'
            f" / {_pct(t.target)}</text>"
        )
    out.append("</svg>")
    return "".join(out)


def _trend_chart(s: SourceSummary) -> str:
    width, height, pad = 300, 120, 24
    points = s.daily_p50_s
    label = f"{s.source} ({_dur(s.wait_p50_s)} p50, trend {_num(s.trend, '.2f')}x)"
    out = [
        f'<div class="chart"><div class="label">{html.escape(label)}</div>',
        f'<svg class="trend" width="{width}" height="{height}" role="img">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fafafa" stroke="#ddd"/>',
    ]
    if points:
        top = max(v for _, v in points) or 1.0
        step = (width - 2 * pad) / max(len(points) - 1, 1)
        xy = [
            (pad + i * step, height - pad - (height - 2 * pad) * v / top)
            for i, (_, v) in enumerate(points)
        ]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
        out.append(f'<polyline points="{path}" fill="none" stroke="#36c" stroke-width="2"/>')
        out += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="#36c"/>' for x, y in xy]
        out.append(f'<text x="4" y="14" font-size="11">{html.escape(_dur(top))}</text>')
        first, last = points[0][0], points[-1][0]
        out.append(
            f'<text x="{pad}" y="{height - 6}" font-size="10">{html.escape(first)}</text>'
            f'<text x="{width - pad - 60}" y="{height - 6}" font-size="10">'
            f"{html.escape(last)}</text>"
        )
    out.append("</svg></div>")
    return "".join(out)


def _bars(name: str, values: Sequence[tuple[str, float]], fmt: str) -> str:
    row, bar = 24, 260
    top = max((v for _, v in values), default=0.0) or 1.0
    height = row * max(len(values), 1) + 6
    out = [f'<svg id="{name}" width="520" height="{height}" role="img">']
    for i, (label, value) in enumerate(values):
        y = 3 + i * row
        out.append(f'<text x="0" y="{y + 15}" font-size="12">{html.escape(label)}</text>')
        out.append(
            f'<rect class="bar" x="160" y="{y}" width="{bar * value / top:.1f}" height="18" '
            'fill="#69c"/>'
        )
        out.append(
            f'<text x="{160 + bar * value / top + 4:.1f}" y="{y + 14}" font-size="12">'
            f"{fmt.format(value)}</text>"
        )
    out.append("</svg>")
    return "".join(out)


def _hours(report: Report) -> str:
    counts = [sum(s.timeouts_by_hour[h] for s in report.sources) for h in range(24)]
    width, height, pad = 24 * 18 + 20, 120, 20
    top = max(counts) or 1
    out = [f'<svg id="timeouts" width="{width}" height="{height}" role="img">']
    for h, n in enumerate(counts):
        tall = (height - 2 * pad) * n / top
        x = 10 + h * 18
        out.append(
            f'<rect class="hour" x="{x}" y="{height - pad - tall:.1f}" width="14" '
            f'height="{tall:.1f}" fill="#c63"><title>{h:02d}h: {n}</title></rect>'
        )
        if h % 3 == 0:
            out.append(f'<text x="{x}" y="{height - 5}" font-size="10">{h:02d}</text>')
    out.append("</svg>")
    return "".join(out)
