from __future__ import annotations

import itertools
import math
import random
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.triggers.policy.strategies import (
    attempts,
    exponentials,
    linears,
    monotone_policies,
    seconds,
)
from waitwise.triggers.policy import (
    Capped,
    Constant,
    Exponential,
    FullJitter,
    IntervalPolicy,
    Linear,
    PolicyConfigError,
    PollState,
    intervals,
)

RNG_SEED = 0


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (Constant(5), [5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0]),
        (Constant(0.01), [0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01]),
        (Linear(1, 2, 10), [1.0, 3.0, 5.0, 7.0, 9.0, 10.0, 10.0, 10.0]),
        (Linear(3, 0, 3), [3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0]),
        (Linear(0.5, 0.25, 1), [0.5, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]),
        (Exponential(1, 2, 60), [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]),
        (Exponential(0.5, 3, 100), [0.5, 1.5, 4.5, 13.5, 40.5, 100.0, 100.0, 100.0]),
        (Exponential(2, 1, 10), [2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]),
        (Capped(Exponential(1, 2, 60), 5), [1.0, 2.0, 4.0, 5.0, 5.0, 5.0, 5.0, 5.0]),
        (Capped(Constant(9), 20), [9.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0]),
    ],
)
def test_exact_schedule(policy, expected):
    rng = random.Random(RNG_SEED)
    states = (PollState(attempt) for attempt in itertools.count(1))
    assert [policy.next_interval(s, rng) for s in itertools.islice(states, 8)] == (expected)


@pytest.mark.parametrize(
    ("policy", "attempt", "expected"),
    [
        (Exponential(1, 2, 60), 10**6, 60.0),
        (Exponential(1, 1.5, 60), 2**200, 60.0),
        (Exponential(3, 1, 60), 2**200, 3.0),
        (Linear(1, 1e300, 60), 2**200, 60.0),
        (Linear(4, 0, 60), 2**200, 4.0),
    ],
)
def test_huge_attempts_do_not_overflow(policy, attempt, expected):
    assert policy.next_interval(PollState(attempt), random.Random(RNG_SEED)) == expected


@pytest.mark.parametrize(
    ("policy", "max_interval"),
    [
        (Constant(7), 7.0),
        (Linear(1, 2, 10), 10.0),
        (Linear(1, 0, 10), 1.0),
        (Exponential(1, 2, 60), 60.0),
        (Exponential(1, 1, 60), 1.0),
        (Capped(Exponential(1, 2, 60), 5), 5.0),
        (Capped(Constant(3), 5), 3.0),
    ],
)
def test_max_interval(policy, max_interval):
    assert policy.max_interval == max_interval


@pytest.mark.parametrize(
    ("policy", "monotone"),
    [
        (Constant(1), True),
        (Linear(1, 1, 2), True),
        (Exponential(1, 2, 4), True),
        (Capped(Exponential(1, 2, 4), 3), True),
        (Capped(FullJitter(Constant(4)), 3), False),
    ],
)
def test_monotone(policy, monotone):
    assert policy.monotone is monotone


def test_parameters_are_stored_as_floats():
    assert Exponential(1, 2, 60).to_config() == {
        "kind": "exponential",
        "initial": 1.0,
        "factor": 2.0,
        "cap": 60.0,
    }


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Constant(0), "Constant.interval must be >= 0.01, got 0"),
        (lambda: Constant(-1.5), "Constant.interval must be >= 0.01, got -1.5"),
        (lambda: Constant(True), "Constant.interval must be a number, got True"),
        (lambda: Constant("5"), "Constant.interval must be a number, got '5'"),  # type: ignore[arg-type]
        (lambda: Constant(None), "Constant.interval must be a number, got None"),  # type: ignore[arg-type]
        (lambda: Constant(math.nan), "Constant.interval must be finite, got nan"),
        (lambda: Constant(math.inf), "Constant.interval must be finite, got inf"),
        (lambda: Constant(10**400), "Constant.interval must be finite, got 1000"),
        (lambda: Linear(0.001, 1, 2), "Linear.initial must be >= 0.01, got 0.001"),
        (lambda: Linear(1, -1, 2), "Linear.increment must be >= 0, got -1"),
        (lambda: Linear(1, 1, 0.5), "Linear.cap must be >= initial (1.0), got 0.5"),
        (lambda: Linear(1, 1, math.inf), "Linear.cap must be finite, got inf"),
        (lambda: Exponential(0, 2, 2), "Exponential.initial must be >= 0.01, got 0"),
        (lambda: Exponential(1, 0.5, 2), "Exponential.factor must be >= 1, got 0.5"),
        (lambda: Exponential(1, False, 2), "Exponential.factor must be a number, got False"),
        (lambda: Exponential(2, 2, 1), "Exponential.cap must be >= initial (2.0), got 1"),
        (lambda: Capped(5, 1), "Capped.inner must be an interval policy, got 5"),  # type: ignore[arg-type]
        (lambda: Capped(Constant(1), 0), "Capped.cap must be >= 0.01, got 0"),
    ],
)
def test_rejects_bad_parameters_naming_them(build, message):
    with pytest.raises(PolicyConfigError, match=f"^{re.escape(message)}"):
        build()


@given(monotone_policies, st.text(max_size=10))
def test_monotone_schedules_never_decrease(policy, key: str):  # `monotone` is optional
    schedule = list(itertools.islice(intervals(policy, key), 80))
    assert policy.monotone is True
    assert all(a <= b for a, b in itertools.pairwise(schedule))


@given(monotone_policies, attempts, st.integers(0, 2**32))
def test_interval_stays_within_bounds(policy: IntervalPolicy, attempt: int, seed: int):
    interval = policy.next_interval(PollState(attempt), random.Random(seed))
    assert 0 < interval <= policy.max_interval


@given(linears() | exponentials(), attempts)
def test_growth_is_capped(policy: Linear | Exponential, attempt: int):
    interval = policy.next_interval(PollState(attempt), random.Random(RNG_SEED))
    assert policy.initial <= interval <= policy.cap


@given(monotone_policies, seconds)
def test_capped_never_exceeds_its_cap(inner: IntervalPolicy, cap: float):
    schedule = itertools.islice(intervals(Capped(inner, cap), "k"), 40)
    assert max(schedule) <= cap
