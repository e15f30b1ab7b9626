"""The HTML report opened in a real headless Chromium: no errors, its charts, its numbers.

The history is built here (:class:`~devtools.report_screenshot.Feed`: four sources over the
three tiers, three timeouts) and every expected figure below is worked out by hand from it,
not from :func:`~waitwise.triggers.report.summarize`.  The page is opened from a file, as a
user opens what ``waitwise report --html`` wrote.  Chromium must be installed (``make
chromium``; ``make test`` does it): without it these tests fail, they do not skip.
"""

from __future__ import annotations

import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools import chromium
from devtools.chromium import ChromiumUnavailable, Page, open_page
from devtools.report_screenshot import Feed, report_of
from tests.browser.conftest import KEPT
from waitwise.triggers.breaker import BreakerSnapshot, BreakerState
from waitwise.triggers.report import html_page

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

FEEDS = (
    # this week's waits (days ago 0, 1, ...), the previous week's wait, timed-out days
    Feed("fin", "high", (100, 110, 120, 130, 140, 150, 160), 60, deadline_s=900),
    Feed("ledger", "high", (30,), 30, deadline_s=900),
    Feed("crm", "medium", (600,), 600, frozenset({3}), hour=9),
    Feed(
        "partner",
        "low",
        (3600,),
        3000,
        frozenset({0, 1}),
        skipped=True,
        hour=2,
        deadline_s=4 * 3600,
    ),
)
BREAKERS: dict[str, BreakerSnapshot | None] = {
    "partner": BreakerSnapshot("partner", BreakerState.OPEN, 2, opened_at=0.0)
}
GREEN, RED, TRACK = (0x33, 0xAA, 0x77), (0xCC, 0x33, 0x33), (0xEE, 0xEE, 0xEE)


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(html_page(report_of(FEEDS, breakers=BREAKERS)), encoding="utf-8")
    started = time.monotonic()
    with open_page(path.as_uri(), width=1280, height=1600) as opened:
        yield opened
    KEPT.append(
        f"{opened.browser_version}: report loaded in {opened.load_s:.2f} s, "
        f"browser up and down in {time.monotonic() - started:.1f} s"
    )


def test_the_page_reports_no_errors(page: Page) -> None:
    assert page.errors() == []
    assert page.evaluate("document.title").startswith("waitwise report: 7 days to 2026-10-30")


@pytest.mark.parametrize(
    ("selector", "count"),
    [
        ("svg#tiers", 1),
        ("table#sources", 1),
        ("svg#pokes", 1),
        ("svg#timeouts", 1),
        ("svg.trend", 4),  # one per source
        ("#tiers rect.rate", 3),  # one per tier
        ("#tiers line.target", 3),  # every tier has a preset's target
        ("#pokes rect.bar", 4),
        ("#timeouts rect.hour", 24),
        ("svg.trend polyline", 4),
    ],
)
def test_the_charts_are_rendered(page: Page, selector: str, count: int) -> None:
    boxes = page.evaluate(
        f"[...document.querySelectorAll({selector!r})].map(e => "
        "{const r = e.getBoundingClientRect(); return [r.width, r.height];})"
    )
    assert len(boxes) == count
    if not selector.startswith("#timeouts rect"):  # an hour without timeouts has no height
        assert all(w > 0 or h > 0 for w, h in boxes), boxes  # a line or a flat trend: one is 0


def test_the_tier_bars_are_the_built_success_rates(page: Page) -> None:
    bars = page.evaluate(
        "[...document.querySelectorAll('#tiers rect.rate')].map(e => "
        "[Math.round(e.getBoundingClientRect().width * 10) / 10, e.getAttribute('fill')])"
    )
    # 260 px is 100%: high 14 of 14, medium 6 of 7, low 5 of 7; red below the target
    assert bars == [[260, "#3a7"], [222.9, "#c33"], [185.7, "#c33"]]
    labels = page.evaluate("document.querySelector('#tiers').textContent")
    assert labels == "high100.0% / 99.9%medium85.7% / 95.0%low71.4% / 80.0%"


def test_the_sources_table_matches_the_history(page: Page) -> None:
    rows = page.evaluate(
        "[...document.querySelectorAll('#sources tr')].map(r => [...r.cells].map(c => c.innerText))"
    )
    assert rows[0][:8] == [
        "source", "tier", "waits", "success / target", "wait p50 / p95", "trend", "timeouts",
        "pokes/wait",
    ]  # fmt: skip
    assert [" | ".join(row[:9]) for row in rows[1:]] == [
        # 6 of 7 (day 3 timed out), 10 min each, as the week before; (6 * 4 + 12) / 7 pokes
        "crm | medium | 7 | 85.7% / 95.0% BELOW | 10.0 min / 10.0 min | 1.00x | 1 | 5.1 | -",
        # 100..160 s: p50 the 4th (130 s), p95 the 7th (160 s); 130 / 60 the week before
        "fin | high | 7 | 100.0% / 99.9% met | 2.2 min / 2.7 min | 2.17x | 0 | 4.0 | -",
        "ledger | high | 7 | 100.0% / 99.9% met | 30 s / 30 s | 1.00x | 0 | 4.0 | -",
        # days 0 and 1 skipped at the deadline: 5 of 7; 3600 / 3000; (5 * 4 + 2 * 12) / 7
        "partner | low | 7 | 71.4% / 80.0% BELOW | 60.0 min / 60.0 min | 1.20x | 2 | 6.3 | open",
    ]
    below = page.evaluate(
        "[...document.querySelectorAll('#sources td.below')].map(c => getComputedStyle(c).color)"
    )
    assert below == ["rgb(187, 0, 0)", "rgb(187, 0, 0)"]  # crm and partner, in red
    text = page.evaluate("document.body.innerText")
    # poke mode: 910 + 210 + (6 * 600 + 3600) + (5 * 3600 + 2 * 4 h) s; reschedule: 136 pokes
    assert "in poke mode 55,120, in reschedule mode 187." in text


def test_the_other_charts_match_the_history(page: Page) -> None:
    heights = page.evaluate(
        "[...document.querySelectorAll('#timeouts rect.hour')].map(e => "
        "Math.round(e.getBoundingClientRect().height))"
    )
    assert {h: n for h, n in enumerate(heights) if n} == {2: 80, 9: 40}  # partner 2, crm 1
    points = page.evaluate(
        "[...document.querySelectorAll('svg.trend')].map(s => s.querySelectorAll('circle').length)"
    )
    assert points == [6, 7, 7, 5]  # a point per day with a successful wait
    pokes = page.evaluate("[...document.querySelectorAll('#pokes text')].map(t => t.textContent)")
    assert pokes == ["crm", "5.1", "fin", "4.0", "ledger", "4.0", "partner", "6.3"]


def _pixels(png: bytes) -> tuple[int, int, list[bytes]]:
    """Return width, height and RGB rows of an 8-bit RGB or RGBA PNG (filters undone)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, data, header = 8, b"", b""
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, body = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        header = body if kind == b"IHDR" else header
        data += body if kind == b"IDAT" else b""
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    assert (depth, colour) in {(8, 2), (8, 6)}
    bpp = 3 if colour == 2 else 4
    raw, stride, rows = zlib.decompress(data), width * bpp, []
    prev = bytearray(stride)
    for y in range(height):
        kind, line = (
            raw[y * (stride + 1)],
            bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]),
        )
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                add = a if pa <= pb and pa <= pc else b if pb <= pc else c
            else:
                add = (0, a, b, (a + b) // 2)[kind]
            line[i] = (line[i] + add) & 0xFF
        rows.append(bytes(px for x in range(width) for px in line[x * bpp : x * bpp + 3]))
        prev = line
    return width, height, rows


def test_a_screenshot_is_kept_and_shows_the_report(page: Page, artifacts: Path) -> None:
    shot = page.screenshot(artifacts / "report.png")
    KEPT.append(f"{shot} ({shot.stat().st_size // 1024} KB)")
    png = shot.read_bytes()
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (1280, page.evaluate("document.documentElement.scrollHeight"))
    assert len(png) > 40_000  # a blank 1280 x 1,500 page compresses to a few KB
    tiers = page.screenshot(artifacts / "tiers.png", selector="#tiers")
    KEPT.append(str(tiers))
    _, _, rows = _pixels(tiers.read_bytes())
    colours = {row[x : x + 3] for row in rows for x in range(0, len(row), 3)}
    assert {bytes(GREEN), bytes(RED), bytes(TRACK)} <= colours  # the bars as drawn
    assert len(colours) > 20  # and anti-aliased text, not flat boxes


def test_the_error_check_sees_what_a_broken_page_reports(tmp_path: Path) -> None:
    broken = tmp_path / "broken.html"
    broken.write_text(
        "<!DOCTYPE html><html><body><p>report</p><img src='missing.png'>"
        "<script>console.error('x'); console.log('fine'); null.f()</script></body></html>"
    )
    with open_page(broken.as_uri()) as opened:
        errors = opened.errors()
    assert sorted((e.source, e.level) for e in errors) == [
        ("console", "error"),  # console.error('x'), not console.log
        ("exception", "error"),  # the uncaught TypeError
        ("network", "error"),  # the image that is not there
    ]
    assert "x" in [e.text for e in errors]


def test_a_missing_chromium_fails_naming_make_chromium(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chromium, "find_chromium", lambda: None)
    with pytest.raises(ChromiumUnavailable, match=r"run `make chromium`"), open_page("about:blank"):
        pass


def test_the_tier_labels_fit_their_chart(page: Page) -> None:
    overflow = page.evaluate(
        "(() => { const svg = document.querySelector('#tiers').getBoundingClientRect();"
        " return [...document.querySelectorAll('#tiers text')]"
        ".map(t => t.getBoundingClientRect().right - svg.right); })()"
    )
    assert max(overflow) <= 0, overflow
