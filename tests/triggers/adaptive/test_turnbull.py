"""Turnbull's estimator: exact cases, censoring, and the invariants of any estimate."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from waitwise.triggers.adaptive.turnbull import estimate


def test_exactly_observed_arrivals_give_the_empirical_distribution_at_the_edges() -> None:
    # Between edges the mass of a cell is spread evenly (the module docstring).
    est = estimate([10, 20, 20, 40], [10, 20, 20, 40], [1, 1, 1, 1])
    assert [round(est.cdf(t), 6) for t in (10, 20, 30, 40)] == [0.25, 0.75, 0.875, 1.0]
    assert est.beyond == 0.0


def test_overlapping_intervals_put_the_mass_where_they_agree() -> None:
    # (0, 2] and (1, 3] overlap only on (1, 2]: the NPMLE puts all mass there.
    est = estimate([0, 1], [2, 3], [1, 1])
    assert est.cdf(1.0) == pytest.approx(0.0, abs=1e-6)
    assert est.cdf(2.0) == pytest.approx(1.0, abs=1e-6)


def test_right_censored_waits_are_mass_past_the_horizon_not_arrivals() -> None:
    est = estimate([0, 0, 50], [10, 10, math.inf], [1, 1, 1])
    assert (round(est.cdf(10), 6), round(est.beyond, 6)) == (round(2 / 3, 6), round(1 / 3, 6))


def test_a_censored_wait_after_the_arrivals_is_late_or_never() -> None:
    est = estimate([0, 100], [10, math.inf], [1, 1])
    assert est.quantile(0.4) is not None
    assert est.quantile(0.9) is None  # the history cannot say when, or whether


def test_weights_count_like_repeated_observations() -> None:
    weighted = estimate([0, 20], [10, 30], [3, 1])
    repeated = estimate([0, 0, 0, 20], [10, 10, 10, 30], [1, 1, 1, 1])
    assert np.allclose(weighted.masses, repeated.masses)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (([], [], []), "non-empty"),
        (([0], [1, 2], [1]), "equal"),
        (([0], [1], [0]), "weight must be > 0"),
    ],
)
def test_bad_input_is_refused(args: tuple[list[float], ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        estimate(*args)


intervals = st.lists(
    st.tuples(
        st.floats(0, 1e5, allow_nan=False),
        st.one_of(st.floats(0, 1e4, allow_nan=False), st.just(math.inf)),
        st.floats(0.01, 10, allow_nan=False),
    ),
    min_size=1,
    max_size=60,
)


@given(intervals)
def test_any_estimate_is_a_distribution_with_a_monotone_cdf(
    data: list[tuple[float, float, float]],
) -> None:
    after = [a for a, _w, _x in data]
    by = [a + w for a, w, _x in data]
    est = estimate(after, by, [x for _a, _w, x in data])
    assert np.all(est.masses >= 0)
    assert est.masses.sum() == pytest.approx(1.0)
    grid = np.linspace(0, est.horizon + 1, 200)
    assert np.all(np.diff(est.cdf_many(grid)) >= -1e-12)
    again = estimate(after, by, [x for _a, _w, x in data])
    assert np.array_equal(est.masses, again.masses)  # deterministic


def _plain_em(after: list[float], by: list[float], w: list[float]) -> np.ndarray:
    """Return the CDF at the edges by plain self-consistency rounds run to 1e-12."""
    est = estimate(after, by, w)  # for its edges only
    edges, cells = est.edges, est.edges.size
    lo, hi = np.asarray(after), np.asarray(by)
    last = np.minimum(
        np.where(np.isfinite(hi), np.searchsorted(edges[1:], hi), cells - 1), cells - 1
    )
    first = np.minimum(np.searchsorted(edges[1:], lo, side="right"), last)
    p = np.full(cells, 1.0 / cells)
    for _ in range(200_000):
        cum = np.concatenate(([0.0], np.cumsum(p)))
        share = np.asarray(w) / np.maximum(cum[last + 1] - cum[first], 1e-300)
        flow = np.zeros(cells + 1)
        np.add.at(flow, first, share)
        np.add.at(flow, last + 1, -share)
        new = p * np.cumsum(flow)[:cells] / sum(w)
        new /= new.sum()
        if np.max(np.abs(new - p)) < 1e-12:
            break
        p = new
    return np.cumsum(new)


def test_the_accelerated_rounds_reach_plain_ems_fixed_point() -> None:
    rng = np.random.default_rng(7)
    arrivals = rng.normal(7200, 900, 300)
    after = list(np.floor(arrivals / 600) * 600)
    by = [a + 600 if rng.random() > 0.1 else math.inf for a in after]
    w = list(0.5 ** (np.arange(300) / 60.0))
    fast = np.cumsum(estimate(after, by, w).masses)
    assert np.max(np.abs(fast - _plain_em(after, by, w))) < 1e-6
