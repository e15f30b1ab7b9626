"""The monitoring run: gauges with bounded cardinality, the log, the page, the summary."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.triggers.store.fakes import MemoryKV
from waitwise.triggers import metrics
from waitwise.triggers.breaker import BreakerSnapshot, BreakerState
from waitwise.triggers.report import summarize
from waitwise.triggers.report.alerts import AlertLedger
from waitwise.triggers.report.monitor import emit, run
from waitwise.triggers.testing import RecordingSink

from .test_report import NOW, histories, seeded_store


def test_gauges_per_tier_and_per_source_with_tags() -> None:
    breaker = BreakerSnapshot("partner", BreakerState.OPEN, 2, opened_at=NOW - 60)
    report = summarize(
        histories(), now=NOW, breakers={"partner": breaker}, targets={"crm_profile": 0.95}
    )
    sink = RecordingSink()
    assert emit(report, sink) == 3
    gauges = {(name, tuple(sorted(tags.items()))): value for _, name, value, tags in sink.records}
    assert gauges[(metrics.TIER_SUCCESS_RATE, (("tier", "low"),))] == pytest.approx(500 / 7)
    assert gauges[(metrics.TIER_BELOW_TARGET, (("tier", "low"),))] == 1.0
    assert gauges[(metrics.TIER_BELOW_TARGET, (("tier", "high"),))] == 0.0
    partner = (("profile", "low"), ("source", "partner"), ("tier", "low"))
    assert gauges[(metrics.SOURCE_BREAKER_OPEN, partner)] == 1.0
    assert gauges[(metrics.SOURCE_SUCCESS_RATE, partner)] == pytest.approx(500 / 7)
    assert 0 <= gauges[(metrics.SOURCE_HEALTH, partner)] < 100
    assert {kind for kind, *_ in sink.records} == {"gauge"}


def test_only_the_least_healthy_sources_get_gauges_past_the_bound(
    caplog: pytest.LogCaptureFixture,
) -> None:
    report = summarize(histories(), now=NOW, targets={"crm_profile": 0.95})
    sink = RecordingSink()
    with caplog.at_level(logging.INFO):
        assert emit(report, sink, max_sources=1) == 1
    sources = {tags.get("source") for *_, tags in sink.records} - {None}
    assert sources == {"partner"}  # the least healthy
    assert "2 healthier sources got no gauges (max_sources=1)" in caplog.text


def test_a_run_reads_the_store_emits_logs_and_writes_the_page(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = seeded_store(tmp_path / "store")
    sink = RecordingSink()
    with caplog.at_level(logging.INFO):
        summary = run(
            window_days=7,
            report_dir=str(tmp_path / "out"),
            store=store,
            sink=sink,
            now=NOW,
            ledger=AlertLedger(MemoryKV()),
        )
    assert summary["sources"] == 3
    assert summary["below_target"] == ["partner"]
    assert sorted(summary["alerts"]) == [
        f"success_rate:partner:{NOW:.0f}",
        f"wait_time:fin:{NOW:.0f}",
    ]
    assert "[waitwise] partner (low): recent success rate" in caplog.text
    assert summary["tiers"]["low"]["waits"] == 7
    assert Path(summary["page"]).read_text().startswith("<!DOCTYPE html>")
    assert "| partner | low | 7 |" in caplog.text
    assert metrics.SOURCE_HEALTH in sink.names()
    with pytest.raises(ValueError, match="window_days must be in"):
        run(window_days=0, store=store, sink=sink)
    with pytest.raises(ValueError, match=r"targets\['crm_profile'\] must be in \(0, 1\], got 95"):
        run(store=store, sink=sink, targets={"crm_profile": 95})
