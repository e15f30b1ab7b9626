"""The arrival model on known distributions: censoring, seasonality, drift, changes, DST."""

from __future__ import annotations

import math
import random
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from waitwise.triggers.adaptive import Learning, Observation, fit
from waitwise.triggers.adaptive.model import ArrivalModel

from .helpers import DAY, T0, normal_days, polled


def fitted(obs: list[Observation], **learning: object) -> ArrivalModel:
    model = fit(obs, Learning(**learning)) if learning else fit(obs)  # type: ignore[arg-type]
    assert model is not None
    return model


def test_too_little_history_gives_no_model() -> None:
    obs = polled(normal_days(9, 3600, 300), 60)
    assert fit(obs) is None
    assert fit(obs, Learning(min_history=9)) is not None


def test_interval_censoring_is_fitted_not_read_as_detection_times() -> None:
    # Polled every 20 min, detections lie ~10 min after arrivals on average: the model must
    # not inherit that bias (the bias would feed itself: sparser pokes, later "arrivals").
    truth = normal_days(400, 7200, 900, seed=1)
    obs = polled(truth, 1200)
    median = fitted(obs).distribution(T0 + 400 * DAY).quantile(0.5)
    naive = float(np.median([o.by_s for o in obs]))
    true_median = float(np.median([t for t in truth if t is not None]))
    assert median is not None
    assert abs(median - true_median) < 150
    assert naive - true_median > 400


def test_the_cdf_is_monotone_and_quantiles_invert_it() -> None:
    dist = fitted(polled(normal_days(200, 5000, 600, seed=2), 60)).distribution(T0 + 200 * DAY)
    grid = np.linspace(0, 20_000, 500)
    assert np.all(np.diff(dist.cdf_many(grid)) >= -1e-12)
    for q in (0.1, 0.5, 0.9):
        x = dist.quantile(q)
        assert x is not None
        assert dist.cdf(x) == pytest.approx(q, abs=0.01)


def test_a_later_weekday_is_learned_apart() -> None:
    # T0 is a Wednesday: days 0, 7, 14, ... arrive 30 minutes later.
    truth = normal_days(350, 7200, 300, seed=3, shift=lambda d: 1800.0 if d % 7 == 0 else 0.0)
    model = fitted(polled(truth, 60))
    wednesday = model.distribution(T0 + 350 * DAY).quantile(0.5)
    thursday = model.distribution(T0 + 351 * DAY).quantile(0.5)
    assert wednesday is not None
    assert thursday is not None
    assert 1500 < wednesday - thursday < 2100
    assert abs(thursday - 7200) < 120  # the late Wednesdays do not move the other days


def test_weekdays_that_do_not_differ_share_one_estimate() -> None:
    model = fitted(polled(normal_days(350, 7200, 300, seed=4), 60))
    days = [model.distribution(T0 + d * DAY) for d in range(350, 357)]
    assert len({id(d.estimate) for d in days}) == 1


def test_a_weekend_that_mostly_stays_empty_expects_little_and_polls_where_arrivals_happen() -> None:
    rng = random.Random(5)
    truth: list[float | None] = []
    for d in range(350):
        weekend = (datetime.fromtimestamp(T0 + d * DAY, ZoneInfo("UTC")).weekday()) >= 5
        truth.append(None if weekend and rng.random() < 0.85 else rng.gauss(7200, 300))
    model = fitted(polled(truth, 60))
    saturday, monday = model.distribution(T0 + 353 * DAY), model.distribution(T0 + 355 * DAY)
    assert saturday.arrives_after(0) < 0.35 < 0.9 < monday.arrives_after(0)
    median = saturday.given_after(0, 0.5)
    assert median is not None
    assert abs(median - 7200) < 300


def test_a_drifting_source_is_tracked() -> None:
    truth = normal_days(300, 3600, 300, seed=6, shift=lambda d: 180.0 * d)
    model = fitted(polled(truth, 60, deadline=3 * DAY))
    median = model.distribution(T0 + 300 * DAY).quantile(0.5)
    assert median is not None
    assert abs(median - (3600 + 180 * 300)) < 600
    assert model.slope * DAY == pytest.approx(180, rel=0.1)


def test_a_stationary_source_has_no_trend() -> None:
    assert fitted(polled(normal_days(300, 3600, 600, seed=7), 60)).slope == 0.0


def test_a_change_of_pattern_is_relearned_within_a_week() -> None:
    truth = normal_days(200, 3600, 200, seed=8) + normal_days(6, 3600 + 7200, 200, seed=9)
    model = fitted(polled(truth, 60))
    assert model.version.endswith("c")
    median = model.distribution(T0 + 206 * DAY).quantile(0.5)
    assert median is not None
    assert median > 3600 + 5000


def test_hours_follow_the_dags_wall_clock_across_dst() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    winter = datetime(2024, 1, 10, 6, tzinfo=berlin).timestamp()
    summer = datetime(2024, 7, 10, 6, tzinfo=berlin).timestamp()
    obs = [Observation(winter + d * DAY, 60.0, 120.0) for d in range(20)]
    model = fitted(obs, timezone="Europe/Berlin")
    assert model._groups.keys() >= {"h6", "w2h6"}
    assert "h5" not in model._groups  # 06:00 Berlin is 05:00 UTC in winter, 04:00 in summer
    assert model.distribution(summer).estimate is model.distribution(winter).estimate


def test_the_same_history_gives_the_same_model_and_version() -> None:
    obs = polled(normal_days(100, 3000, 300, seed=10), 60)
    a, b = fitted(obs), fitted(list(reversed(obs)))
    assert a.version == b.version
    assert a.distribution(T0).quantile(0.5) == b.distribution(T0).quantile(0.5)
    assert fitted(obs[:-1]).version != a.version


def test_all_censored_history_expects_no_arrival() -> None:
    obs = [Observation(T0 + d * DAY, 3600.0, math.inf) for d in range(20)]
    dist = fitted(obs).distribution(T0 + 20 * DAY)
    assert dist.beyond == pytest.approx(1.0)
    assert dist.given_after(0, 0.5) is None
    assert dist.quantile(0.5) is None


@pytest.mark.parametrize(
    ("learning", "field"),
    [
        ({"half_life_days": 0}, "half_life_days"),
        ({"half_life_days": math.nan}, "half_life_days"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"min_history": 0}, "min_history"),
        ({"min_history": True}, "min_history"),
    ],
)
def test_bad_learning_settings_are_refused(learning: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Learning(**learning)  # type: ignore[arg-type]


def test_a_later_weekday_takes_the_shape_of_the_others_moved() -> None:
    # Wednesdays (T0 and every 7th day) 30 minutes later, the same spread as the others:
    # their estimate is the other days', moved, not their own few and noisier runs.
    truth = normal_days(350, 7200, 600, seed=11, shift=lambda d: 1800.0 if d % 7 == 0 else 0.0)
    model = fitted(polled(truth, 60))
    wednesday, thursday = model.distribution(T0 + 350 * DAY), model.distribution(T0 + 351 * DAY)
    _, when = model._groups_of((2, 0))  # T0 + 350 days: a Wednesday, 00:00 UTC
    base, _, move = when.partition("+")
    assert base == model._groups_of((3, 0))[1]
    assert float(move) == pytest.approx(1800, abs=150)
    medians = [d.given_after(0.0, 0.5) or 0.0 for d in (wednesday, thursday)]
    assert medians[0] - medians[1] == pytest.approx(float(move), abs=1.0)
    spreads = [(d.quantile(0.75) or 0.0) - (d.quantile(0.25) or 0.0) for d in (wednesday, thursday)]
    assert spreads[0] == pytest.approx(spreads[1], rel=1e-6)


def test_a_weekday_of_another_shape_keeps_its_own_runs() -> None:
    # Wednesdays as late on the median but three times as spread: moving the others does
    # not explain them.
    rng = random.Random(12)
    truth: list[float | None] = [rng.gauss(7200, 1500 if d % 7 == 0 else 300) for d in range(700)]
    model = fitted(polled(truth, 60), half_life_days=10_000.0)
    wednesday, thursday = model.distribution(T0 + 700 * DAY), model.distribution(T0 + 701 * DAY)
    wide = [(d.quantile(0.9) or 0.0) - (d.quantile(0.1) or 0.0) for d in (wednesday, thursday)]
    assert wide[0] > 3 * wide[1]


def test_the_mix_counts_the_recent_runs_by_what_they_learn_from() -> None:
    rng = random.Random(13)
    truth: list[float | None] = []
    for d in range(350):
        weekend = (datetime.fromtimestamp(T0 + d * DAY, ZoneInfo("UTC")).weekday()) >= 5
        truth.append(None if weekend and rng.random() < 0.85 else rng.gauss(7200, 300))
    model = fitted(polled(truth, 60))
    mix = model.mix(T0 + 350 * DAY)
    assert sum(share for share, _ in mix) == pytest.approx(1.0)
    arrives = sorted((1.0 - d.beyond, share) for share, d in mix)
    # Of the newest 100 runs and the one planned, 28 fall on a weekend, each weekend day
    # with its own (low) chance of arriving.
    assert len(arrives) == 7
    assert [p < 0.35 for p, _ in arrives] == [True, True, False, False, False, False, False]
    assert sum(share for _, share in arrives[:2]) == pytest.approx(28 / 101)
