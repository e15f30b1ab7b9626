"""A wait history built from a few lines per source, and the README's screenshot of its report.

:class:`Feed` describes one source's last two weeks (one wait a day, how long each took, which
days timed out); :func:`histories` turns feeds into the :class:`WaitRecord` lists the report
reads.  ``tests/browser`` opens the report of such a history in Chromium and checks its
numbers; ``python -m devtools.report_screenshot [PATH]`` renders :data:`SAMPLE` (the three
tiers of the scenario: financial, customer and partner data) and writes ``docs/report.png``.
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from devtools.chromium import open_page
from waitwise.triggers.breaker import BreakerSnapshot, BreakerState
from waitwise.triggers.report import html_page, summarize
from waitwise.triggers.report.summary import DAY, Report
from waitwise.triggers.store import WaitOutcome, WaitRecord

NOW: Final = dt.datetime(2026, 10, 30, 12, 0, tzinfo=dt.UTC).timestamp()
"""The report's time: fixed, so the screenshot is the same on every run."""
DOCS_PNG: Final = Path(__file__).resolve().parent.parent / "docs" / "report.png"
WIDTH, HEIGHT = 1280, 965
"""The README's picture: the page's first screen (tiers, sources, the first wait-time charts)."""


@dataclass(frozen=True, slots=True)
class Feed:
    """One source's daily waits over two windows of ``days`` days, newest first.

    :param waits_s: this window's wait for each day, 0 days ago first (cycled).
    :param previous_s: the wait every day of the window before (the trend's baseline).
    :param timeouts: days ago whose wait reached its deadline instead (``deadline_s``).
    :param hour: the UTC hour each wait is scheduled at (the timeouts chart's bucket); a
        wait must end before noon, :data:`NOW`'s hour, to fall in the window it is built for.
    """

    source: str
    profile: str
    waits_s: tuple[float, ...]
    previous_s: float
    timeouts: frozenset[int] = frozenset()
    skipped: bool = False
    hour: int = 6
    pokes: int = 4
    timeout_pokes: int = 12
    deadline_s: float = 3600.0
    days: int = 7


def _day_start(days_ago: int, hour: int) -> float:
    """Return ``hour`` o'clock ``days_ago`` days before :data:`NOW`'s day (NOW is at noon)."""
    midnight = dt.datetime.fromtimestamp(NOW, dt.UTC).replace(hour=0, minute=0, second=0)
    return (midnight - dt.timedelta(days=days_ago) + dt.timedelta(hours=hour)).timestamp()


def _record(feed: Feed, days_ago: int, wait_s: float, timed_out: bool) -> WaitRecord:
    start = _day_start(days_ago, feed.hour)
    common = {
        "source": feed.source,
        "profile": feed.profile,
        "dag_id": f"ingest_{feed.source}",
        "task_id": "wait",
        "run_id": f"scheduled__{days_ago}",
        "try_number": 1,
        "started_at": start,
        "scheduled_at": start,
        "deadline_at": start + feed.deadline_s,
    }
    if timed_out:
        outcome = WaitOutcome.SKIPPED if feed.skipped else WaitOutcome.TIMEOUT
        return WaitRecord(
            **common,  # type: ignore[arg-type]
            ended_at=start + feed.deadline_s,
            outcome=outcome,
            pokes=feed.timeout_pokes,
        )
    return WaitRecord(
        **common,  # type: ignore[arg-type]
        ended_at=start + wait_s,
        outcome=WaitOutcome.SUCCESS,
        first_seen_at=start + wait_s - 5,
        detected_at=start + wait_s,
        pokes=feed.pokes,
        eta_at=start + wait_s - 60,
        eta_low_at=start + wait_s - 300,
        eta_high_at=start + wait_s + 300,
    )


def histories(feeds: Iterable[Feed]) -> dict[str, list[WaitRecord]]:
    """Return each feed's records: ``2 * days`` daily waits ended before :data:`NOW`."""
    out: dict[str, list[WaitRecord]] = {}
    for feed in feeds:
        this = [
            _record(feed, d, feed.waits_s[d % len(feed.waits_s)], d in feed.timeouts)
            for d in range(feed.days)
        ]
        before = [_record(feed, d, feed.previous_s, False) for d in range(feed.days, 2 * feed.days)]
        out[feed.source] = this + before
    return out


def report_of(
    feeds: Sequence[Feed], breakers: dict[str, BreakerSnapshot | None] | None = None
) -> Report:
    """Return the report of ``feeds`` at :data:`NOW` over a window of ``feeds[0].days``."""
    days = feeds[0].days if feeds else 7
    return summarize(histories(feeds), now=NOW, window_s=days * DAY, breakers=breakers)


SAMPLE: Final = (
    Feed("ledger", "high", (95, 102, 88, 110, 97, 91, 105), 90, deadline_s=900),
    Feed("payments", "high", (140, 180, 130, 210, 150, 165, 170), 120, deadline_s=900),
    Feed("crm_accounts", "medium", (540, 610, 580, 700, 560, 620, 590), 600, frozenset({2})),
    Feed("web_events", "medium", (300, 320, 280, 310, 290, 305, 330), 420, hour=7),
    Feed(
        "partner_prices",
        "low",
        (3300, 4100, 3900, 5200, 3600, 4400, 3800),
        3000,
        frozenset({0, 4}),
        skipped=True,
        hour=2,
        deadline_s=4 * 3600,
    ),
    Feed(
        "partner_stock",
        "low",
        (2400, 2600, 2200, 2900, 2500, 2700, 2300),
        2600,
        frozenset({5}),
        skipped=True,
        hour=3,
        deadline_s=4 * 3600,
    ),
)
"""Six sources over the three tiers, with two below their target (the page's red)."""


def shoot(page_path: Path, target: Path) -> int:
    """Open an HTML report in Chromium and write its first screen to ``target``."""
    with open_page(page_path.resolve().as_uri(), width=WIDTH, height=HEIGHT) as page:
        errors = page.errors()
        if errors:
            print("the page reported errors:", *errors, sep="\n  ", file=sys.stderr)
            return 1
        page.screenshot(target, full_page=False)
    print(f"{target} ({target.stat().st_size // 1024} KB)")
    return 0


def main(argv: Sequence[str]) -> int:
    """Render :data:`SAMPLE`'s report in Chromium and write its screenshot (``docs/report.png``).

    ``python -m devtools.report_screenshot PAGE.html PNG`` shoots an existing report instead
    (``make demo`` writes one: ``.demo/report/waitwise-report.html``).
    """
    if argv and argv[0].endswith(".html"):
        return shoot(Path(argv[0]), Path(argv[1]) if len(argv) > 1 else DOCS_PNG)
    target = Path(argv[0]) if argv else DOCS_PNG
    opened = BreakerSnapshot("partner_prices", BreakerState.OPEN, 2, opened_at=NOW - 600)
    report = report_of(SAMPLE, breakers={"partner_prices": opened})
    with tempfile.TemporaryDirectory(prefix="waitwise-report-") as tmp:
        page_path = Path(tmp) / "report.html"
        page_path.write_text(html_page(report), encoding="utf-8")
        with open_page(page_path.as_uri(), width=WIDTH, height=HEIGHT) as page:
            errors = page.errors()
            if errors:
                print("the page reported errors:", *errors, sep="\n  ", file=sys.stderr)
                return 1
            page.screenshot(target, full_page=False)
    print(f"{target} ({target.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
