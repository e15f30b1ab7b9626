from __future__ import annotations

import itertools
import random
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.triggers.policy.strategies import attempts, decorrelated, policies
from waitwise.triggers.policy import (
    Constant,
    DecorrelatedJitter,
    EqualJitter,
    Exponential,
    FullJitter,
    IntervalPolicy,
    PolicyConfigError,
    PollState,
    intervals,
)

# random.Random(0).random() == 0.8444218515250481: every draw below scales it.
STATES = [PollState(1, 0.0, 0.0), PollState(2, 1.0, 1.0), PollState(3, 3.0, 10.0)]


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (FullJitter(Constant(10)), [8.444218515250482] * 3),
        (
            FullJitter(Exponential(1, 2, 60)),
            [0.8444218515250481, 1.6888437030500962, 3.3776874061001925],
        ),
        (EqualJitter(Constant(10)), [9.222109257625242] * 3),
        (
            EqualJitter(Exponential(1, 2, 60)),
            [0.9222109257625241, 1.8444218515250481, 3.6888437030500962],
        ),
        (DecorrelatedJitter(1, 30), [1.0, 2.6888437030500962, 25.488233694226395]),
        (DecorrelatedJitter(1, 20), [1.0, 2.6888437030500962, 17.044015178975915]),
    ],
)
def test_exact_intervals_with_rng_seed_zero(policy, expected):
    assert [policy.next_interval(s, random.Random(0)) for s in STATES] == expected


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (
            FullJitter(Constant(10)),
            [4.561042807225126, 6.19135254764831, 6.970616158504974, 9.623963220430753],
        ),
        (
            EqualJitter(Constant(10)),
            [7.280521403612563, 8.095676273824155, 8.485308079252487, 9.811981610215376],
        ),
        (
            DecorrelatedJitter(1, 30),
            [1.0, 2.238270509529662, 4.98357575839929, 14.426128619476444],
        ),
    ],
)
def test_exact_schedule_for_key_k(policy, expected):
    assert list(itertools.islice(intervals(policy, "k"), 4)) == expected


@pytest.mark.parametrize(
    ("policy", "max_interval"),
    [
        (FullJitter(Exponential(1, 2, 60)), 60.0),
        (EqualJitter(Constant(4)), 4.0),
        (DecorrelatedJitter(1, 30), 30.0),
    ],
)
def test_max_interval_is_the_inner_cap(policy, max_interval):
    assert policy.max_interval == max_interval
    assert policy.monotone is False


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: FullJitter(5), "FullJitter.inner must be an interval policy, got 5"),  # type: ignore[arg-type]
        (
            lambda: EqualJitter(None),  # type: ignore[arg-type]
            "EqualJitter.inner must be an interval policy, got None",
        ),
        (
            lambda: DecorrelatedJitter(0, 1),
            "DecorrelatedJitter.base must be >= 0.01, got 0",
        ),
        (
            lambda: DecorrelatedJitter(2, 1),
            "DecorrelatedJitter.cap must be >= base (2.0), got 1",
        ),
        (
            lambda: DecorrelatedJitter(1, "9"),  # type: ignore[arg-type]
            "DecorrelatedJitter.cap must be a number, got '9'",
        ),
    ],
)
def test_rejects_bad_parameters_naming_them(build, message):
    with pytest.raises(PolicyConfigError, match=f"^{re.escape(message)}$"):
        build()


@given(policies, attempts, st.integers(0, 2**32))
def test_full_jitter_stays_between_zero_and_the_inner_interval(
    inner: IntervalPolicy, attempt: int, seed: int
):
    state = PollState(attempt)
    unjittered = inner.next_interval(state, random.Random(seed))
    jittered = FullJitter(inner).next_interval(state, random.Random(seed))
    assert 0 <= jittered <= unjittered <= inner.max_interval


@given(policies, attempts, st.integers(0, 2**32))
def test_equal_jitter_stays_in_the_upper_half_of_the_inner_interval(
    inner: IntervalPolicy, attempt: int, seed: int
):
    state = PollState(attempt)
    unjittered = inner.next_interval(state, random.Random(seed))
    jittered = EqualJitter(inner).next_interval(state, random.Random(seed))
    assert unjittered / 2 <= jittered <= unjittered


@given(decorrelated(), attempts, st.floats(0, 1e300), st.integers(0, 2**32))
def test_decorrelated_jitter_stays_between_base_and_cap(
    policy: DecorrelatedJitter, attempt: int, previous: float, seed: int
):
    interval = policy.next_interval(PollState(attempt, 0.0, previous), random.Random(seed))
    assert policy.base <= interval <= policy.cap


def test_decorrelated_jitter_bounds_the_range_for_huge_caps():
    policy = DecorrelatedJitter(1, 1.7e308)
    state = PollState(2, 0.0, 1e308)
    assert policy.next_interval(state, random.Random(0)) == 1.4355171475925818e308
