"""The simulator: deterministic plans, explicit scaling, replayed history, landed files."""

from __future__ import annotations

import csv
import datetime as dt
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from waitwise.triggers.policy import MIN_INTERVAL, DecorrelatedJitter, Exponential
from waitwise.triggers.profiles import HIGH, LOW
from waitwise.triggers.simulate.cli import main, parse_outages
from waitwise.triggers.simulate.demo import DEMO_SOURCES, plan_days, scaled_policy, scaled_profile
from waitwise.triggers.simulate.history import arrivals_for, replayed_records
from waitwise.triggers.simulate.land import content, land, land_day
from waitwise.triggers.simulate.wiring import DEMO_ENV, adaptive_for, profile_for, sensor_settings
from waitwise.triggers.store import WaitOutcome


def test_a_plan_is_deterministic_for_its_seed_and_honours_outages() -> None:
    a, b = plan_days(20, 3), plan_days(20, 3)
    assert a == b
    assert plan_days(20, 4) != a
    out = plan_days(20, 3, {"partner": {5, 6}})
    for landing in out:
        if landing.source == "partner" and landing.day in (5, 6):
            assert landing.offset_s is None
        else:
            assert landing == a[out.index(landing)]


def test_offsets_are_the_scenarios_divided_by_each_sources_factor() -> None:
    for src in DEMO_SOURCES:
        mine = [x for x in plan_days(200, 1) if x.source == src.name]
        landed = [x for x in mine if x.simulated_s is not None and x.offset_s is not None]
        assert all(x.offset_s == pytest.approx(x.simulated_s / src.factor) for x in landed)  # type: ignore[operator]
        assert all(src.scenario.low_s <= x.simulated_s <= src.scenario.high_s for x in landed)  # type: ignore[operator]
        never = 1 - len(landed) / len(mine)
        assert abs(never - src.scenario.never) < 0.08


def test_scaling_divides_every_duration_and_keeps_the_rest() -> None:
    high = scaled_profile(HIGH, 10)
    assert (high.name, high.tier, high.reliability) == (HIGH.name, HIGH.tier, HIGH.reliability)
    assert high.timeout_s == HIGH.timeout_s / 10
    assert high.breaker is not None
    assert HIGH.breaker is not None
    assert high.breaker.cooldown_s == HIGH.breaker.cooldown_s / 10
    assert high.breaker.failure_threshold == HIGH.breaker.failure_threshold
    low = scaled_profile(LOW, 540)
    assert low.poll == DecorrelatedJitter(base=60 / 540, cap=900 / 540)
    assert scaled_policy(Exponential(initial=1.0, factor=3.0, cap=100.0), 1000) == Exponential(
        initial=MIN_INTERVAL, factor=3.0, cap=0.1
    )


def test_replayed_history_is_what_the_trigger_would_have_recorded() -> None:
    last = dt.datetime(2026, 12, 6, 6, tzinfo=dt.UTC)
    landings = [x for x in plan_days(12, 35, {"partner": {9}}) if x.source == "partner"]
    profile = profile_for("partner", compressed=True)
    arrivals = arrivals_for(landings, last, 12, profile.timeout_s)
    assert arrivals[-1].scheduled_at == last
    assert arrivals[0].scheduled_at == last - dt.timedelta(days=11)
    records = replayed_records(
        arrivals,
        adaptive_for("partner", compressed=True),
        source="partner",
        profile="low",
        dag_id="waitwise_partner",
        task_id="wait_partner",
        soft_fail=True,
    )
    for wait, record in zip(arrivals, records, strict=True):
        assert record.scheduled_at == wait.scheduled_at.timestamp()
        assert record.pokes >= 1
        if record.outcome is WaitOutcome.SUCCESS:
            assert wait.arrived_after_s is not None
            assert record.first_seen_at is not None
            assert record.first_seen_at >= record.scheduled_at + wait.arrived_after_s
            assert record.last_miss_at is None or record.last_miss_at < record.first_seen_at
            assert record.first_seen_at <= record.deadline_at  # type: ignore[operator]
        else:
            assert record.outcome is WaitOutcome.SKIPPED
            assert record.ended_at == record.deadline_at
    assert records[9].outcome is WaitOutcome.SKIPPED  # the outage day


def test_files_land_whole_through_a_rename_and_parse(tmp_path: Path) -> None:
    for name, suffix in (("financial", "csv"), ("customer", "json"), ("partner", "xml")):
        path = land(tmp_path, f"{name}/x.{suffix}", content(name, "20261206"))
        assert list(path.parent.iterdir()) == [path]  # no temporary file left behind
        body = path.read_text()
        if suffix == "csv":
            assert len(list(csv.DictReader(body.splitlines()))) >= 3
        elif suffix == "json":
            assert len(json.loads(body)) >= 3
        else:
            assert len(ET.fromstring(body).findall("item")) >= 3


def test_a_day_lands_on_its_plan(tmp_path: Path) -> None:
    clock = [1000.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    day = [x for x in plan_days(3, 35) if x.day == 2]
    started = {s.name: 1000.0 for s in DEMO_SOURCES}
    landed: list[tuple[str, float]] = []
    land_day(
        tmp_path,
        day,
        DEMO_SOURCES,
        "20261206",
        started,
        clock=lambda: clock[0],
        sleep=sleep,
        on_land=lambda landing, _path: landed.append((landing.source, clock[0])),
    )
    expected = sorted((1000.0 + x.offset_s, x.source) for x in day if x.offset_s is not None)
    assert [source for source, _ in landed] == [source for _, source in expected]
    assert [at for _, at in landed] == pytest.approx([at for at, _ in expected])


def test_outage_arguments_are_checked() -> None:
    assert parse_outages(["partner:3-4", "customer:1"], 10) == {"partner": {3, 4}, "customer": {1}}
    for bad in ("partner:4-x", "nobody:1-2", "partner:8-12"):
        with pytest.raises(ValueError, match="--outage"):
            parse_outages([bad], 10)


def test_the_command_prints_the_plan(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--days", "3", "--outage", "partner:1-2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["day", "financial", "customer", "partner"]
    assert out[2].rstrip().endswith("never")


def test_the_demo_settings_are_explicit_and_only_in_demo_mode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(DEMO_ENV, raising=False)
    assert sensor_settings("partner")["profile"] is LOW
    monkeypatch.setenv(DEMO_ENV, "1")
    partner = sensor_settings("partner")
    assert partner["profile"].breaker.failure_threshold == 2
    assert partner["profile"].timeout_s == pytest.approx(4.5 * 3600 / 540)
    assert partner["scheduled_at"] == "{{ dag_run.start_date | string }}"
    assert partner["poll"].trust_from == 5
