"""The policy bench's true distributions: they describe what the generators draw."""

from __future__ import annotations

import numpy as np
import pytest

from devtools.bench import truth
from waitwise.triggers.adaptive import Arrival
from waitwise.triggers.simulate import scenarios

N = 6_000
POINTS = np.array([3_600.0, 6_000.0, 7_200.0, 8_400.0, 10_800.0, 14_400.0, 21_000.0])


def _empirical(waits: list[Arrival], at: np.ndarray) -> np.ndarray:
    arrived = np.array(
        [w.arrived_after_s if w.arrived_after_s is not None else np.inf for w in waits]
    )
    return np.array([float(np.mean(arrived <= t)) for t in at])


@pytest.mark.parametrize(
    ("pattern", "weekday"),
    [(scenarios.DAILY, 0), (scenarios.DAILY, 2), (scenarios.DAILY, 5), (scenarios.OUTAGE, 0)],
)
def test_daily_truth_matches_the_generator(pattern: scenarios.DailyPattern, weekday: int) -> None:
    # One weekday of the first weeks: the same truth for every wait drawn here.
    waits = [w for w in scenarios.daily_like(pattern, N, 5) if w.scheduled_at.weekday() == weekday]
    waits = [
        w
        for w in waits
        if scenarios.lands_probability(pattern, scenarios.day_number(w), weekday) > 0
    ]
    found = truth.daily_truth(pattern, waits[0]).cdf_many(POINTS)
    assert np.max(np.abs(found - _empirical(waits, POINTS))) < 0.05


def test_uniform_truth_matches_the_generator() -> None:
    waits = scenarios.uniform(scenarios.PARTNER, N, 3)
    own, mix = truth.uniform_truths(scenarios.PARTNER, waits[0])
    assert mix == [(1.0, own)]
    assert np.max(np.abs(own.cdf_many(POINTS) - _empirical(waits, POINTS))) < 0.02


def test_a_daily_mix_counts_its_weekdays_and_outage_days() -> None:
    wait = scenarios.outage(1, 1, 119)[0]  # the last day of the second outage
    own, mix = truth.daily_truths(scenarios.OUTAGE, wait)
    assert sum(share for share, _ in mix) == pytest.approx(1.0)
    assert own.lands == 0.0
    outages = 8 / (truth.MIX_DAYS + 1)  # days 56-59 and 116-119 of days 19-119
    assert {t.lands: share for share, t in mix} == pytest.approx({0.0: outages, 1.0: 1 - outages})
    week = scenarios.daily(1, 1, 200)[0]
    _, weekly = truth.daily_truths(scenarios.DAILY, week)
    assert len(weekly) == 3  # weekdays, Wednesdays, weekends


def test_cdf_is_monotone_and_bounded_by_the_chance_to_land() -> None:
    own = truth.daily_truth(scenarios.DAILY, scenarios.daily(1, 1, 5)[0])  # a Saturday
    values = own.cdf_many(np.linspace(0.0, 30_000.0, 500))
    assert np.all(np.diff(values) >= -1e-12)
    assert values[-1] == pytest.approx(own.lands, abs=1e-6)
    assert own.cdf(7_000.0) == pytest.approx(float(own.cdf_many(np.array([7_000.0]))[0]))


def test_planned_pokes_detect_every_arrival_by_the_deadline() -> None:
    waits = scenarios.daily(40, 2, 100)
    pokes, latencies, _ = truth.planned_pokes(
        waits,
        lambda w: truth.daily_truths(scenarios.DAILY, w),
        target_s=60.0,
        max_interval_s=3_600.0,
    )
    for wait, n, latency in zip(waits, pokes, latencies, strict=True):
        arrived = wait.arrived_after_s
        assert (latency is not None) == (arrived is not None and arrived <= wait.deadline_s)
        assert 2 <= n <= int(wait.timeout_s / 60.0) + 2
    # Most arrivals fall where the plan is dense: within the target.
    detected = [latency for latency in latencies if latency is not None]
    assert sum(latency <= 60.0 for latency in detected) / len(detected) > 0.9
