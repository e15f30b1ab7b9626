"""Hypothesis strategies for the poll policies, shared by the policy tests."""

from __future__ import annotations

from hypothesis import strategies as st

from waitwise.triggers.policy import (
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
)

seconds = st.floats(min_value=MIN_INTERVAL, max_value=1e5)
attempts = st.integers(min_value=1, max_value=10**6) | st.integers(min_value=1)
keys = st.text(max_size=30)


@st.composite
def linears(draw: st.DrawFn) -> Linear:
    initial = draw(seconds)
    increment = draw(st.floats(min_value=0, max_value=1e3))
    return Linear(initial, increment, initial + draw(st.floats(0, 1e5)))


@st.composite
def exponentials(draw: st.DrawFn) -> Exponential:
    initial = draw(seconds)
    factor = draw(st.floats(min_value=1, max_value=10))
    return Exponential(initial, factor, initial + draw(st.floats(0, 1e5)))


@st.composite
def decorrelated(draw: st.DrawFn) -> DecorrelatedJitter:
    base = draw(seconds)
    return DecorrelatedJitter(base, base + draw(st.floats(0, 1e5)))


airflows = st.builds(AirflowExponential, st.floats(0, 1e4), st.none() | seconds)
_monotone_leaves = st.one_of(st.builds(Constant, seconds), linears(), exponentials(), airflows)
monotone_policies: st.SearchStrategy[IntervalPolicy] = st.recursive(
    _monotone_leaves, lambda inner: st.builds(Capped, inner, seconds), max_leaves=2
)
"""Policies whose intervals never decrease: no jitter, optionally capped."""

policies: st.SearchStrategy[IntervalPolicy] = st.recursive(
    monotone_policies | decorrelated(),
    lambda inner: st.one_of(
        st.builds(FullJitter, inner),
        st.builds(EqualJitter, inner),
        st.builds(Capped, inner, seconds),
    ),
    max_leaves=3,
)
"""Every built-in policy, jitter wrapped around any of them included."""
