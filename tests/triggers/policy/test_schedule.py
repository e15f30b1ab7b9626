from __future__ import annotations

import itertools
import math
import random
import re
from dataclasses import dataclass, field

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tests.triggers.policy.strategies import keys, policies
from waitwise.triggers.policy import (
    JSON,
    MAX_ELAPSED,
    MAX_REPLAY,
    MIN_INTERVAL,
    AirflowExponential,
    Capped,
    Constant,
    DecorrelatedJitter,
    EqualJitter,
    Exponential,
    FullJitter,
    IntervalPolicy,
    Linear,
    PollState,
    interval_at,
    intervals,
    resume,
    rng_for,
)


@dataclass(frozen=True)
class Returns:
    """A custom policy returning ``value`` and counting its calls."""

    value: float
    calls: list[int] = field(default_factory=list)

    @property
    def max_interval(self) -> float:
        return max(self.value, MIN_INTERVAL)

    def next_interval(self, state: PollState, rng: random.Random) -> float:
        self.calls.append(state.attempt)
        return self.value

    def to_config(self) -> dict[str, JSON]:
        return {"kind": "returns", "value": self.value}


def first(policy: IntervalPolicy, key: str, count: int) -> list[float]:
    return list(itertools.islice(intervals(policy, key), count))


@pytest.mark.parametrize(
    ("key", "attempt", "expected"),
    [
        ("k", 1, 0.45610428072251263),
        ("k", 2, 0.619135254764831),
        ("k", 3, 0.6970616158504974),
        ("dag.task.run.-1", 1, 0.4692475614168008),
        ("dag.task.run.-1", 2, 0.1327464307155567),
    ],
)
def test_rng_is_the_same_in_every_process(key, attempt, expected):
    assert rng_for(key, attempt).random() == expected


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (Constant(5), [5.0, 5.0, 5.0, 5.0]),
        (Exponential(1, 2, 60), [1.0, 2.0, 4.0, 8.0]),
        (
            FullJitter(Exponential(1, 2, 60)),
            [0.45610428072251263, 1.238270509529662, 2.7882464634019897, 7.699170576344602],
        ),
        (
            EqualJitter(Exponential(1, 2, 60)),
            [0.7280521403612563, 1.619135254764831, 3.394123231700995, 7.849585288172301],
        ),
        (
            Capped(FullJitter(Constant(10)), 5),
            [4.561042807225126, 5.0, 5.0, 5.0],
        ),
        (AirflowExponential(5, 30), [3.0, 9.0, 14.0, 20.0]),
    ],
)
def test_exact_schedule_for_key_k(policy, expected):
    assert first(policy, "k", 4) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0.0, MIN_INTERVAL), (-3.0, MIN_INTERVAL), (0.001, MIN_INTERVAL), (2.0, 2.0)],
)
def test_intervals_never_go_below_the_minimum(value, expected):
    assert first(Returns(value), "k", 3) == [expected] * 3


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_non_finite_intervals_are_rejected(value):
    with pytest.raises(ValueError, match=r"^Returns\(.*\) returned a non-finite interval"):
        interval_at(Returns(value), "k", PollState())


def test_interval_at_is_one_step_of_the_schedule():
    policy = DecorrelatedJitter(1, 30)
    schedule = first(policy, "k", 3)
    state = PollState().advance(schedule[0]).advance(schedule[1])
    assert interval_at(policy, "k", state) == schedule[2]


@pytest.mark.parametrize(
    ("policy", "elapsed", "expected"),
    [
        (Constant(5), 0.0, PollState(1, 0.0, 0.0)),
        (Constant(5), 4.99, PollState(1, 0.0, 0.0)),
        (Constant(5), 5.0, PollState(2, 5.0, 5.0)),
        (Constant(5), 12.0, PollState(3, 10.0, 5.0)),
        (Constant(5), -7.0, PollState(1, 0.0, 0.0)),
        (Constant(0.5), 1e11, PollState(2 * 10**11 + 1, 1e11, 0.5)),
        (Exponential(1, 2, 60), 100.0, PollState(7, 63.0, 32.0)),
        (Exponential(1, 2, 60), 3600.0, PollState(65, 3543.0, 60.0)),
        (Linear(1, 2, 10), 30.0, PollState(6, 25.0, 9.0)),
        (AirflowExponential(5), 100.0, PollState(6, 92.0, 46.0)),
        (AirflowExponential(5, 30), 100.0, PollState(6, 76.0, 30.0)),
        (
            FullJitter(Constant(10)),
            20.0,
            PollState(4, 17.72301151337841, 6.970616158504974),
        ),
        (
            DecorrelatedJitter(1, 30),
            20.0,
            PollState(4, 8.221846267928953, 4.98357575839929),
        ),
    ],
)
def test_resume_finds_the_last_poke_at_or_before_elapsed(policy, elapsed, expected):
    assert resume(policy, "k", elapsed) == expected


@pytest.mark.parametrize("elapsed", [math.nan, math.inf, MAX_ELAPSED * 2])
def test_resume_rejects_elapsed_it_cannot_resolve(elapsed):
    message = f"elapsed must be a number <= {MAX_ELAPSED}, got {elapsed!r}"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        resume(Constant(1), "k", elapsed)


def test_resume_skips_the_flat_tail_of_a_monotone_policy():
    policy = Capped(Exponential(1, 2, 1e6), 60)
    assert resume(policy, "k", MAX_ELAPSED) == PollState(16_666_666_672, 999_999_999_963.0, 60.0)


def test_resume_does_not_extrapolate_less_than_a_poke():
    assert resume(Returns(1.0), "k", MAX_REPLAY + 0.5) == PollState(
        MAX_REPLAY + 1, float(MAX_REPLAY), 1.0
    )


def test_resume_replays_at_most_max_replay_pokes_at_a_time():
    policy = Returns(1.0)  # custom, not known to be monotone: replayed
    state = resume(policy, "k", 1e9)
    assert state == PollState(1_000_000_001, 1e9, 1.0)
    assert len(policy.calls) < 3 * MAX_REPLAY


def test_resume_extrapolates_jitter_with_its_mean_interval():
    policy = FullJitter(Constant(2))
    state = resume(policy, "k", 1e7)
    assert state.elapsed <= 1e7 < state.elapsed + interval_at(policy, "k", state)
    # uniform(0, 2) has mean 1, and the mean of MAX_REPLAY draws is within a few %.
    assert state == PollState(9_551_699, 9_999_999.76644957, 1.507097803283096)
    assert 0.9e7 < state.attempt < 1.1e7


@given(policies, keys, st.floats(0, 1e7))
@settings(deadline=None)
def test_resume_lands_between_two_pokes(policy: IntervalPolicy, key: str, elapsed: float):
    state = resume(policy, key, elapsed)
    assert state.elapsed <= elapsed < state.elapsed + interval_at(policy, key, state)


@given(policies, keys, st.integers(0, MAX_REPLAY - 1), st.floats(0, 1, exclude_max=True))
@settings(deadline=None)
def test_resume_agrees_with_replaying_the_schedule(
    policy: IntervalPolicy, key: str, pokes: int, fraction: float
):
    schedule = first(policy, key, pokes + 2)  # rounding may land on the next poke
    poke_times = list(itertools.accumulate(schedule, initial=0.0))
    elapsed = poke_times[pokes] + fraction * schedule[pokes]
    assume(elapsed <= MAX_ELAPSED)
    state = resume(policy, key, elapsed)
    # A flat tail is skipped as `start + n * interval`, a few ulps off a running sum.
    assert math.isclose(state.elapsed, poke_times[state.attempt - 1], rel_tol=1e-12)
    assert poke_times[state.attempt - 1] <= elapsed * (1 + 1e-12)
    assert elapsed < poke_times[state.attempt] * (1 + 1e-12)


@given(policies, keys)
def test_schedule_stays_within_bounds(policy: IntervalPolicy, key: str):
    schedule = first(policy, key, 50)
    assert all(MIN_INTERVAL <= i <= policy.max_interval for i in schedule)


@given(policies, keys)
def test_same_key_gives_the_same_schedule(policy: IntervalPolicy, key: str):
    assert first(policy, key, 30) == first(policy, key, 30)


@given(st.lists(keys, min_size=2, max_size=2, unique=True))
def test_different_keys_give_different_jitter(pair: list[str]):
    policy = FullJitter(Exponential(1, 2, 60))
    assert first(policy, pair[0], 5) != first(policy, pair[1], 5)
