"""The poke plan: latency budget, deadline poke, dense where arrival is likely."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from waitwise.triggers.adaptive import Distribution, fit, plan
from waitwise.triggers.adaptive.planner import shared_cutoff
from waitwise.triggers.adaptive.turnbull import Estimate, estimate

from .helpers import DAY, T0, normal_days, polled


def normal_dist(mean: float, sd: float, seed: int = 0) -> Distribution:
    model = fit(polled(normal_days(300, mean, sd, seed=seed), 30, deadline=mean + 10 * sd))
    assert model is not None
    return model.distribution(T0 + 300 * DAY)


def late_share(dist: Distribution, offsets: tuple[float, ...], dense: float) -> float:
    """Return the arrival mass (before the deadline) detected more than ``dense`` late."""
    grid = np.linspace(offsets[0], offsets[-1], 20_001)
    mass = np.diff(dist.cdf_many(grid))
    mids = (grid[:-1] + grid[1:]) / 2
    detect = np.asarray(offsets)[np.searchsorted(offsets, mids)]
    return float(mass[detect - mids > dense + 1e-6].sum() / mass.sum())


def test_dense_where_arrival_is_likely_sparse_elsewhere_and_a_poke_at_the_deadline() -> None:
    dist = normal_dist(7200, 600)
    found = plan(dist, 0.0, 6 * 3600, dense=60, sparse=1800, budget=0.04)
    gaps = np.diff(found.offsets)
    assert found.offsets[0] == 0.0
    assert found.offsets[-1] == 6 * 3600
    assert np.all(gaps > 0)
    assert np.all(gaps <= 1800 + 1e-9)
    assert found.offsets[1] == 1800.0  # nothing expected in the first hours
    around = [g for o, g in zip(found.offsets, gaps, strict=False) if 6600 <= o < 7800]
    assert around
    assert max(around) == pytest.approx(60)
    assert late_share(dist, found.offsets, 60) <= 0.04 + 0.005
    assert found.late_mass <= 0.04 + 1e-9
    assert found.expected_pokes < 0.4 * (7200 / 60)


def test_a_wait_that_starts_later_plans_from_its_start() -> None:
    found = plan(normal_dist(7200, 600), 7000.0, 9000.0, dense=60, sparse=1800, budget=0.04)
    assert found.offsets[0] == 7000.0
    assert found.offsets[1] == 7060.0


def test_with_nothing_expected_it_polls_sparsely_to_the_deadline() -> None:
    dist = Distribution(estimate([3600.0] * 20, [math.inf] * 20, [1.0] * 20))
    found = plan(dist, 0.0, 3 * 3600, dense=60, sparse=1800, budget=0.04)
    assert found.offsets == tuple(float(x) for x in range(0, 3 * 3600 + 1, 1800))


def test_a_window_already_closed_is_one_poke() -> None:
    assert plan(normal_dist(100, 10), 50.0, 50.0, dense=5, sparse=60, budget=0.04).offsets == (
        50.0,
    )


@settings(max_examples=25, deadline=None)
@given(
    mean=st.floats(600, 20_000),
    sd=st.floats(30, 3000),
    dense=st.sampled_from([10.0, 60.0, 300.0]),
    budget=st.floats(0.0, 0.2),
)
def test_any_plan_keeps_the_latency_budget(
    mean: float, sd: float, dense: float, budget: float
) -> None:
    dist = normal_dist(mean, sd)
    deadline = mean + 6 * sd
    found = plan(dist, 0.0, deadline, dense=dense, sparse=max(dense, 3600.0), budget=budget)
    assert found.offsets[-1] == pytest.approx(deadline)
    assert all(b > a for a, b in zip(found.offsets, found.offsets[1:], strict=False))
    assert late_share(dist, found.offsets, dense) <= budget + 0.01


def sometimes(dist: Distribution, arrives: float) -> Distribution:
    """Return ``dist`` for a run whose data arrives with probability ``arrives`` only."""
    est = dist.estimate
    masses = np.append(est.masses[:-1] * arrives, 1.0 - arrives * (1.0 - est.beyond))
    return Distribution(Estimate(est.edges, masses, est.weight), dist.shift, dist.bandwidth)


def test_one_budget_over_a_sources_runs_polls_the_mostly_empty_ones_sparsely() -> None:
    weekday = normal_dist(7200, 900)
    weekend = sometimes(weekday, 0.15)
    mix = [(5 / 7, weekday), (2 / 7, weekend)]
    window = (0.0, 6 * 3600.0)
    cutoff = shared_cutoff(mix, *window, dense=60, budget=0.04)
    shared = [plan(d, *window, dense=60, sparse=3600, budget=0.04, cutoff=cutoff) for _, d in mix]
    apart = [plan(d, *window, dense=60, sparse=3600, budget=0.04) for _, d in mix]
    # The mostly empty run pokes far less; the other a little more.
    assert shared[1].expected_pokes < 0.6 * apart[1].expected_pokes
    assert shared[0].expected_pokes >= apart[0].expected_pokes
    pokes = sum(share * p.expected_pokes for (share, _), p in zip(mix, shared, strict=True))
    alone = sum(share * p.expected_pokes for (share, _), p in zip(mix, apart, strict=True))
    assert pokes < 0.85 * alone
    # The budget holds over the source's arrivals, not over each run's.
    arrivals = [share * (1.0 - d.beyond) for share, d in mix]
    late = [late_share(d, p.offsets, 60) for (_, d), p in zip(mix, shared, strict=True)]
    assert late[1] > 0.04
    assert np.dot(arrivals, late) / sum(arrivals) <= 0.04 + 0.002


def test_a_mix_of_one_run_plans_as_the_run_alone() -> None:
    dist = normal_dist(5000, 700)
    cutoff = shared_cutoff([(1.0, dist)], 0.0, 20_000.0, dense=60, budget=0.04)
    alone = plan(dist, 0.0, 20_000.0, dense=60, sparse=1800, budget=0.04)
    assert plan(dist, 0.0, 20_000.0, dense=60, sparse=1800, budget=0.04, cutoff=cutoff) == alone
    assert shared_cutoff([], 0.0, 20_000.0, dense=60, budget=0.04) == math.inf


def test_the_last_sparse_cell_before_a_poke_is_not_counted_late() -> None:
    # The poke that opens the dense cells sees the arrivals of the cell before it in time:
    # the plan's late mass is what a fine grid measures, not one cell more.
    dist = normal_dist(7200, 600)
    found = plan(dist, 0.0, 6 * 3600, dense=60, sparse=1800, budget=0.04)
    assert found.late_mass == pytest.approx(late_share(dist, found.offsets, 60), abs=0.002)
    assert found.late_mass > 0.03


@settings(max_examples=25, deadline=None)
@given(
    mean=st.floats(600, 20_000),
    sd=st.floats(30, 3000),
    arrives=st.floats(0.05, 1.0),
    share=st.floats(0.05, 0.95),
    budget=st.floats(0.0, 0.2),
)
def test_any_shared_plan_keeps_the_budget_over_the_mix(
    mean: float, sd: float, arrives: float, share: float, budget: float
) -> None:
    usual = normal_dist(mean, sd)
    mix = [(share, usual), (1.0 - share, sometimes(usual, arrives))]
    window = (0.0, mean + 6 * sd)
    cutoff = shared_cutoff(mix, *window, dense=60.0, budget=budget)
    plans = [
        plan(d, *window, dense=60.0, sparse=3600.0, budget=budget, cutoff=cutoff) for _, d in mix
    ]
    arrivals = [s * (d.cdf(window[1]) - d.cdf(0.0)) for s, d in mix]
    late = [late_share(d, p.offsets, 60.0) for (_, d), p in zip(mix, plans, strict=True)]
    assert np.dot(arrivals, late) / sum(arrivals) <= budget + 0.01
    assert all(p.offsets[-1] == pytest.approx(window[1]) for p in plans)
