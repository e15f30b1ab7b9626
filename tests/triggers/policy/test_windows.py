from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.triggers.policy.strategies import keys, policies, seconds
from waitwise.triggers.policy import (
    MIN_INTERVAL,
    Constant,
    DecorrelatedJitter,
    Exponential,
    FullJitter,
    IntervalPolicy,
)
from waitwise.triggers.policy.windows import Window, current, plan, span_bound
from waitwise.triggers.profiles import LOW

W = Window
EXP = Exponential(initial=10.0, factor=3.0, cap=50.0)
LOW_REOPEN = LOW.retry.reopen_backoff
CONSTANT_PLAN = (W(0, 1000.0, 1300.0), W(1, 1360.0, 1660.0), W(2, 1720.0, 2020.0))
anchors = st.floats(0, 4e9)  # epoch seconds up to 2096
reopens = st.integers(0, 6)


@pytest.mark.parametrize(
    ("anchor", "timeout", "max_reopens", "backoff", "expected"),
    [
        (5.0, 10.0, 0, None, (W(0, 5.0, 15.0),)),
        (5.0, 10.0, 0, Constant(60.0), (W(0, 5.0, 15.0),)),
        (1000.0, 300.0, 2, Constant(60.0), CONSTANT_PLAN),
        (
            0.0,
            60.0,
            3,
            EXP,  # pauses 10, 30, then 50 (capped)
            (W(0, 0.0, 60.0), W(1, 70.0, 130.0), W(2, 160.0, 220.0), W(3, 270.0, 330.0)),
        ),
        (
            0.0,
            LOW.timeout_s,
            LOW.retry.max_reopens,
            LOW_REOPEN,  # the partner preset: re-open after 30 min, then after 1 h
            (W(0, 0.0, 14400.0), W(1, 16200.0, 30600.0), W(2, 34200.0, 48600.0)),
        ),
    ],
)
def test_plan_exact_windows(
    anchor: float,
    timeout: float,
    max_reopens: int,
    backoff: IntervalPolicy | None,
    expected: tuple[Window, ...],
) -> None:
    assert plan(anchor, timeout, max_reopens=max_reopens, reopen_backoff=backoff) == expected


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("dag/a/run1", (W(0, 0.0, 600.0), W(1, 713.146523243834, 1313.146523243834))),
        ("dag/a/run2", (W(0, 0.0, 600.0), W(1, 1086.4824544805988, 1686.4824544805988))),
        ("dag/b/run1", (W(0, 0.0, 600.0), W(1, 977.845631775725, 1577.845631775725))),
    ],
)
def test_plan_jittered_pause_is_pinned_per_key(key: str, expected: tuple[Window, ...]) -> None:
    jitter = FullJitter(Constant(600.0))
    assert plan(0.0, 600.0, max_reopens=1, reopen_backoff=jitter, key=key) == expected


@pytest.mark.parametrize("backoff", [FullJitter(EXP), DecorrelatedJitter(60.0, 900.0)])
def test_plan_jittered_different_keys_give_different_plans(backoff: IntervalPolicy) -> None:
    keys_ = [f"dag/task/run{i}" for i in range(8)]
    plans = {plan(0.0, 600.0, max_reopens=3, reopen_backoff=backoff, key=k) for k in keys_}
    assert len(plans) == len(keys_)


@given(anchors, seconds, reopens, policies, keys)
def test_plan_same_key_same_plan(
    anchor: float, timeout: float, n: int, backoff: IntervalPolicy, key: str
) -> None:
    first = plan(anchor, timeout, max_reopens=n, reopen_backoff=backoff, key=key)
    assert plan(anchor, timeout, max_reopens=n, reopen_backoff=backoff, key=key) == first


@given(anchors, seconds, reopens, policies, keys)
def test_plan_windows_are_ordered_disjoint_and_timeout_long(
    anchor: float, timeout: float, n: int, backoff: IntervalPolicy, key: str
) -> None:
    windows = plan(anchor, timeout, max_reopens=n, reopen_backoff=backoff, key=key)
    assert [w.index for w in windows] == list(range(n + 1))
    assert windows[0].opens_at == anchor
    assert all(w.closes_at == w.opens_at + timeout for w in windows)
    pauses = [b.opens_at - a.closes_at for a, b in itertools.pairwise(windows)]
    assert all(p > MIN_INTERVAL / 2 for p in pauses)  # a real pause, whatever the rounding


@given(anchors, seconds, reopens, policies, keys)
def test_span_bound_covers_the_last_window_for_any_key(
    anchor: float, timeout: float, n: int, backoff: IntervalPolicy, key: str
) -> None:
    last = plan(anchor, timeout, max_reopens=n, reopen_backoff=backoff, key=key)[-1]
    assert last.closes_at <= anchor + span_bound(timeout, n, backoff)  # as Airflow adds it


def test_span_bound_is_an_upper_bound_in_floats() -> None:
    last = plan(0.0, 0.1, max_reopens=3, reopen_backoff=Constant(0.2))[-1]
    assert last.closes_at <= span_bound(0.1, 3, Constant(0.2))  # 1.0000000000000002 > 1.0


@pytest.mark.parametrize(
    ("timeout", "max_reopens", "backoff", "expected"),
    [
        (300.0, 0, None, 300.0),
        (300.0, 0, Constant(60.0), 300.0),
        (300.0, 2, Constant(60.0), 1020.0),
        (60.0, 3, EXP, 390.0),  # 4 * 60 + 3 * cap; the real plan ends at 330
        (60.0, 3, FullJitter(EXP), 390.0),
        (LOW.timeout_s, 2, LOW_REOPEN, 3 * 14400.0 + 2 * 7200.0),
    ],
)
def test_span_bound_exact(
    timeout: float, max_reopens: int, backoff: IntervalPolicy | None, expected: float
) -> None:
    margin = 0.001 if max_reopens and backoff else 0.0  # float rounding margin of re-openings
    assert span_bound(timeout, max_reopens, backoff) == expected + margin


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (0.0, CONSTANT_PLAN[0]),  # before the wait: the first window, not yet open
        (1000.0, CONSTANT_PLAN[0]),
        (1299.9, CONSTANT_PLAN[0]),
        (1300.0, CONSTANT_PLAN[1]),  # window 0 closed: in the pause, window 1 is next
        (1330.0, CONSTANT_PLAN[1]),
        (1660.0, CONSTANT_PLAN[2]),
        (2019.99, CONSTANT_PLAN[2]),
        (2020.0, None),  # every window closed
        (1e12, None),
    ],
)
def test_current_exact(now: float, expected: Window | None) -> None:
    assert current(CONSTANT_PLAN, now) == expected


@given(anchors, seconds, reopens, policies, keys, st.floats(-0.1, 1.1))
def test_current_is_the_first_window_still_open(
    anchor: float, timeout: float, n: int, backoff: IntervalPolicy, key: str, share: float
) -> None:
    windows = plan(anchor, timeout, max_reopens=n, reopen_backoff=backoff, key=key)
    now = anchor + share * span_bound(timeout, n, backoff)  # before, inside, between, after
    closed = sum(w.closes_at <= now for w in windows)  # a prefix: the windows are ordered
    assert current(windows, now) == (*windows, None)[closed]


def test_current_of_no_windows_is_none() -> None:
    assert current((), 0.0) is None


@pytest.mark.parametrize("max_reopens", [1, 3])
def test_plan_needs_a_backoff_to_reopen(max_reopens: int) -> None:
    with pytest.raises(ValueError, match=r"^plan\(\) needs reopen_backoff when max_reopens > 0$"):
        plan(0.0, 60.0, max_reopens=max_reopens)
