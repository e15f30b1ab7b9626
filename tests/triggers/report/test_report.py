"""The report: its figures from a history built here, its text and HTML, the console command."""

from __future__ import annotations

import asyncio
import html.parser
import math
from dataclasses import replace
from pathlib import Path

import pytest

from tests.triggers.store.fakes import make_record
from waitwise.triggers.breaker import BreakerSnapshot, BreakerState
from waitwise.triggers.report import html_page, summarize, text
from waitwise.triggers.report.cli import main
from waitwise.triggers.report.summary import RESCHEDULE_RUN_S
from waitwise.triggers.store import FileStore, WaitOutcome, WaitRecord

DAY = 86_400.0
NOW = 1_700_000_000.0 + 30 * DAY  # 2023-12-14 22:13 UTC


def day_waits(source: str, profile: str, days: range, wait_s: float) -> list[WaitRecord]:
    """One successful wait a day, ``wait_s`` long, ended ``days`` before NOW."""
    out = []
    for d in days:
        start = NOW - d * DAY - wait_s - 10
        out.append(
            make_record(
                d,
                source=source,
                profile=profile,
                run_id=f"{source}-{d}",
                scheduled_at=start,
                started_at=start,
                first_seen_at=start + wait_s - 5,
                detected_at=start + wait_s,
                ended_at=start + wait_s,
                pokes=4,
                eta_at=start + wait_s - 65,
                eta_low_at=start + wait_s - 300,
                eta_high_at=start + wait_s + 300,
            )
        )
    return out


def timeout_of(record: WaitRecord, *, skipped: bool = False) -> WaitRecord:
    outcome = WaitOutcome.SKIPPED if skipped else WaitOutcome.TIMEOUT
    return replace(
        record, outcome=outcome, first_seen_at=None, detected_at=None, eta_at=None, pokes=10
    )


def histories() -> dict[str, list[WaitRecord]]:
    fin = day_waits("fin", "high", range(7), 120.0)  # this week: 7 waits of 2 min
    fin += day_waits("fin", "high", range(7, 14), 60.0)  # the week before: 1 min
    partner = day_waits("partner", "low", range(7), 3600.0)
    partner[0], partner[1] = timeout_of(partner[0]), timeout_of(partner[1], skipped=True)
    # a wait recorded twice (a trigger that ran twice) counts once; a cancelled one not at all
    partner.append(replace(partner[2], pokes=5, ended_at=partner[2].ended_at + 1))
    partner.append(replace(partner[3], run_id="cancelled", outcome=WaitOutcome.CANCELLED))
    partner.append(replace(partner[4], run_id="rejected", outcome=WaitOutcome.BREAKER_OPEN))
    custom = day_waits("crm", "crm_profile", range(3), 600.0)
    return {"fin": fin, "partner": partner, "crm": custom}


def seeded_store(root: Path) -> FileStore:
    """Return a FileStore in ``root`` holding :func:`histories`."""
    store = FileStore(root)

    async def seed() -> None:
        for records in histories().values():
            await store.append_many(records)

    asyncio.run(seed())
    return store


def test_the_figures_match_the_history() -> None:
    breaker = BreakerSnapshot("partner", BreakerState.OPEN, 2, opened_at=NOW - 60)
    report = summarize(
        histories(), now=NOW, breakers={"partner": breaker}, targets={"crm_profile": 0.95}
    )
    fin, partner, crm = (
        next(s for s in report.sources if s.source == n) for n in ("fin", "partner", "crm")
    )
    assert (fin.tier, fin.target, fin.waits, fin.success_rate) == ("high", 0.999, 7, 1.0)
    assert fin.meets_target is True
    assert (fin.wait_p50_s, fin.wait_p95_s, fin.previous_p50_s) == (120.0, 120.0, 60.0)
    assert fin.trend == pytest.approx(2.0)
    assert fin.pokes_per_wait == 4.0
    assert fin.eta_waits == 7
    assert fin.eta_error_p50_s == pytest.approx(60.0)
    assert fin.eta_coverage == 1.0
    assert len(fin.daily_p50_s) == 7
    # partner: 7 waits (the doubled one once, the cancelled and rejected not), 2 timeouts
    assert (partner.tier, partner.waits, partner.successes, partner.timeouts) == ("low", 7, 5, 2)
    assert partner.success_rate == pytest.approx(5 / 7)
    assert partner.meets_target is False
    assert partner.rejected == 1
    assert (partner.breaker, partner.consecutive_failures) == ("open", 2)
    assert sum(partner.timeouts_by_hour) == sum(partner.timeouts_by_weekday) == 2
    assert partner.pokes_per_wait == pytest.approx((4 * 4 + 5 + 2 * 10) / 7)
    assert partner.health is not None
    assert partner.health < fin.health  # type: ignore[operator]
    assert partner.reschedule_worker_s == pytest.approx((4 * 4 + 5 + 20) * RESCHEDULE_RUN_S)
    assert crm.target == 0.95
    assert crm.tier == "medium"
    tiers = {t.tier: t for t in report.tiers}
    assert [t.tier for t in report.tiers] == ["high", "medium", "low"]
    assert (tiers["low"].waits, tiers["low"].successes, tiers["low"].target) == (7, 5, 0.8)
    poke, _ = report.worker_seconds
    assert poke == pytest.approx(
        fin.poke_mode_worker_s + partner.poke_mode_worker_s + crm.poke_mode_worker_s
    )
    assert fin.poke_mode_worker_s == pytest.approx(7 * 120.0)


def test_an_unknown_profile_has_no_target_and_no_health() -> None:
    report = summarize({"x": day_waits("x", "mine", range(3), 60.0)}, now=NOW)
    (only,) = report.sources
    assert (only.tier, only.target, only.meets_target, only.health) == ("unknown", None, None, None)
    assert summarize({}, now=NOW).sources == ()
    with pytest.raises(ValueError, match="window_s must be seconds > 0, got nan"):
        summarize({}, now=NOW, window_s=math.nan)


def test_the_text_report_shows_each_tier_and_source() -> None:
    out = text(summarize(histories(), now=NOW, targets={"crm_profile": 0.95}))
    assert "| low | 1 | 7 | 71.4% | 80.0% |" in out
    assert "| partner | low | 7 | 71.4% / 80.0% BELOW |" in out
    assert "| fin | high | 7 | 100.0% / 99.9% met | 2.0 min / 2.0 min | 2.00x |" in out
    assert "Timeouts of partner by scheduled hour (UTC)" in out
    assert "waitwise 0" in out


class _Parser(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.ids: set[str] = set()
        self.classes: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        found = dict(attrs)
        if found.get("id"):
            self.ids.add(str(found["id"]))
        if found.get("class"):
            self.classes.append(str(found["class"]))


def test_the_html_page_is_self_contained_with_its_charts() -> None:
    page = html_page(summarize(histories(), now=NOW))
    parsed = _Parser()
    parsed.feed(page)
    assert {"tiers", "sources", "pokes", "timeouts"} <= parsed.ids
    assert parsed.classes.count("trend") == 3
    assert parsed.classes.count("hour") == 24
    assert "script" not in parsed.tags
    assert "http://" not in page
    assert "https://" not in page
    assert "BELOW" in page


def test_names_are_escaped_in_the_page() -> None:
    evil = day_waits("fin", "<b>x</b>", range(2), 60.0)
    page = html_page(summarize({"fin": evil}, now=NOW))
    assert "<b>x</b>" not in page


def test_the_console_command_reads_a_file_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seeded_store(tmp_path / "store")
    out = tmp_path / "report.html"
    # NOW is in 2023: a window reaching back to it from the real now
    code = main(
        [
            "report",
            "--root",
            str(tmp_path / "store"),
            "--days",
            "36000",
            "--html",
            str(out),
            "--target",
            "crm_profile=0.95",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "| crm | medium |" in printed
    assert "| partner | low |" in printed
    assert out.read_text().startswith("<!DOCTYPE html>")


def test_the_console_command_refuses_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["report", "--root", "/tmp", "--target", "x=2"])
    assert exit_.value.code == 2
    assert "--target must be PROFILE=RELIABILITY in (0, 1], got 'x=2'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["report", "--root", "/tmp", "--days", "0"])


def test_an_unreachable_store_is_reported_not_dumped(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["report", "--api-url", "http://127.0.0.1:9", "--token", "t"])
    assert code == 1
    assert "waitwise report: cannot read the store:" in capsys.readouterr().err
