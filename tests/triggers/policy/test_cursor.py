"""The window schedule: the flat-tail shortcut gives exactly the schedule the policy defines."""

from __future__ import annotations

import itertools
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.triggers.policy.strategies import exponentials, keys, linears
from waitwise.triggers.policy import MIN_INTERVAL, Constant, IntervalPolicy, Schedule, intervals

monotone = st.one_of(
    st.floats(min_value=0.05, max_value=50).map(lambda s: Constant(interval=s)),
    linears(),
    exponentials(),
)


def reference_pokes(policy: IntervalPolicy, key: str, after: float) -> tuple[int, float, float]:
    """The first poke after ``after``: its attempt number, the poke before it, its time."""
    total = previous = 0.0
    for attempt, interval in enumerate(itertools.chain([0.0], intervals(policy, key)), 1):
        previous, total = total, total + interval
        if total > after:
            return attempt, previous, total
    raise AssertionError("unreachable")


@settings(deadline=None)  # tiny intervals make the reference walk thousands of pokes
@given(monotone, keys, st.lists(st.floats(min_value=0, max_value=100), min_size=1, max_size=8))
def test_schedule_matches_the_policy_schedule(
    policy: IntervalPolicy, key: str, times: list[float]
) -> None:
    schedule = Schedule.resumed(policy, key, opens_at=0.0, now=0.0)
    for now in sorted(times):
        delay = schedule.delay_until_next(now, closes_at=math.inf)
        attempt, last, nominal = reference_pokes(policy, key, now)
        near = (last - now, nominal - now, nominal - now - MIN_INTERVAL)
        if any(abs(gap) < 1e-6 for gap in near):
            continue  # a nominal poke within rounding of the present: either answer is right
        # never sooner than MIN_INTERVAL after the present (the loop must not spin)
        expected = max(nominal, now + MIN_INTERVAL)
        assert math.isclose(now + delay, expected, rel_tol=1e-9, abs_tol=1e-6)
        # in and out of the flat tail, the state names that next poke
        assert schedule.state.attempt == attempt
        assert math.isclose(schedule.state.elapsed, nominal, rel_tol=1e-9, abs_tol=1e-6)
        assert schedule.clamped(closes_at=nominal - 1e-3)
        assert not schedule.clamped(closes_at=nominal + 1e-3)


def test_flat_tail_is_skipped_in_one_step() -> None:
    schedule = Schedule.resumed(Constant(interval=2.0), "k", opens_at=0.0, now=0.0)
    assert schedule.delay_until_next(0.0, closes_at=1e9) == 2.0
    assert schedule.flat == 2.0
    assert schedule.delay_until_next(1001.0, closes_at=1e9) == 1.0  # next nominal is +1002
    assert schedule.state.attempt == 502
