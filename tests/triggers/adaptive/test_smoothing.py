"""The adaptive kernel: a CDF still, the same mass, smooth where arrivals are few."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from waitwise.triggers.adaptive.smoothing import WIDEN, bandwidth, smooth
from waitwise.triggers.adaptive.turnbull import Estimate, estimate

from .helpers import normal_days


def core_and_tail() -> Estimate:
    """300 arrivals around 2 h seen to the minute, and 12 spread over hours 3 to 5."""
    core = [a for a in normal_days(300, 7200, 600, seed=1) if a is not None]
    tail = [10_800 + 600 * i for i in range(12)]
    after = [60 * math.floor(a / 60) for a in core + tail]
    return estimate(after, [a + 60 for a in after], [1.0] * len(after))


def test_a_sparse_tail_is_smoothed_and_the_bulk_keeps_its_shape() -> None:
    raw = core_and_tail()
    smoothed = smooth(raw, bandwidth(raw, 312))
    # Between the tail's observations the raw estimate has gaps with no mass at all.
    grid = np.arange(10_800, 17_400, 300.0)
    raw_mass, mass = np.diff(raw.cdf_many(grid)), np.diff(smoothed.cdf_many(grid))
    assert raw_mass.min() == 0.0
    assert mass.min() > 0.3 * mass.mean()
    assert mass.sum() == pytest.approx(12 / 312, rel=0.2)
    for q in (0.25, 0.5, 0.75):
        bulk, kept = raw.quantile(q), smoothed.quantile(q)
        assert bulk is not None
        assert kept is not None
        assert kept == pytest.approx(bulk, abs=60)


def test_nothing_to_smooth_is_returned_as_is() -> None:
    raw = core_and_tail()
    assert smooth(raw, 0.0) is raw
    censored = estimate([3600.0] * 5, [math.inf] * 5, [1.0] * 5)
    assert smooth(censored, 100.0) is censored


def test_the_widest_kernel_is_bounded() -> None:
    raw = core_and_tail()
    width = bandwidth(raw, 312)
    smoothed = smooth(raw, width)
    last = raw.horizon
    assert smoothed.horizon <= last + 4.5 * WIDEN * width


@settings(max_examples=40, deadline=None)
@given(
    points=st.lists(st.floats(0, 50_000), min_size=2, max_size=60),
    widths=st.lists(st.floats(0, 5_000), min_size=2, max_size=60),
    never=st.integers(0, 10),
    width=st.floats(1.0, 3_000.0),
)
def test_any_smoothed_estimate_is_a_cdf_with_the_same_mass(
    points: list[float], widths: list[float], never: int, width: float
) -> None:
    n = min(len(points), len(widths))
    after = points[:n] + [40_000.0] * never
    by = [p + w for p, w in zip(points[:n], widths[:n], strict=True)] + [math.inf] * never
    raw = estimate(after, by, [1.0] * len(after))
    smoothed = smooth(raw, width)
    cdf = smoothed.cdf_many(np.linspace(-20_000, 100_000, 4_001))
    assert np.all(np.diff(cdf) >= -1e-12)
    assert smoothed.beyond == pytest.approx(raw.beyond)
    assert cdf[-1] == pytest.approx(1.0 - raw.beyond, abs=1e-9)
    assert np.all(smoothed.masses >= 0.0)
