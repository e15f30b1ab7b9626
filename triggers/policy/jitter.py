"""Jitter: spread the pokes of many sensors apart so they do not hit a source together.

The three algorithms are those compared in Marc Brooker's "Exponential Backoff And
Jitter" (AWS Architecture Blog, 2015,
https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/). Its
simulation favours full and decorrelated jitter; equal jitter keeps a floor of half
the wait. All randomness comes from the ``rng`` passed in, never from the ``random``
module.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import ClassVar

from ._base import (
    PolicyBase,
    check_number,
    check_policy,
    check_seconds,
)
from .protocol import IntervalPolicy
from .state import PollState

__all__ = ["DecorrelatedJitter", "EqualJitter", "FullJitter"]


@dataclass(frozen=True, slots=True)
class FullJitter(PolicyBase):
    """Wait a uniformly random fraction of the inner policy's interval.

    Formula: ``uniform(0, d)`` with ``d = inner.next_interval(state, rng)`` (AWS "Full
    Jitter"). It spreads load the most and halves the mean wait; the schedule raises a
    draw below ``MIN_INTERVAL`` to it. Use it around :class:`Exponential` when many
    sensors share a source; avoid it when each poke must wait a minimum time.

    :param inner: the policy giving the interval ``d`` to jitter.
    """

    kind: ClassVar[str] = "full_jitter"
    inner: IntervalPolicy

    def __post_init__(self) -> None:
        check_policy(self, "inner")

    @property
    def max_interval(self) -> float:
        """Return ``inner.max_interval``: jitter never waits longer than ``inner``."""
        return self.inner.max_interval

    def next_interval(self, state: PollState, rng: random.Random) -> float:
        """Return ``uniform(0, d)``, never above ``d``."""
        interval = self.inner.next_interval(state, rng)
        return min(rng.uniform(0.0, interval), interval)


@dataclass(frozen=True, slots=True)
class EqualJitter(PolicyBase):
    """Wait half the inner policy's interval plus a random share of the other half.

    Formula: ``d / 2 + uniform(0, d / 2)`` with ``d = inner.next_interval(state, rng)``
    (AWS "Equal Jitter"). Use it when every wait must last at least half the inner
    interval; it spreads load less than :class:`FullJitter`.

    :param inner: the policy giving the interval ``d`` to jitter.
    """

    kind: ClassVar[str] = "equal_jitter"
    inner: IntervalPolicy

    def __post_init__(self) -> None:
        check_policy(self, "inner")

    @property
    def max_interval(self) -> float:
        """Return ``inner.max_interval``: jitter never waits longer than ``inner``."""
        return self.inner.max_interval

    def next_interval(self, state: PollState, rng: random.Random) -> float:
        """Return ``d / 2 + uniform(0, d / 2)``, never above ``d``."""
        interval = self.inner.next_interval(state, rng)
        half = interval / 2
        return min(half + rng.uniform(0.0, half), interval)


@dataclass(frozen=True, slots=True)
class DecorrelatedJitter(PolicyBase):
    """Draw each wait between ``base`` and three times the previous wait, up to ``cap``.

    Formula: ``min(cap, uniform(base, max(base, previous * 3)))`` where ``previous`` is
    ``state.previous``, so the first wait is ``base`` (AWS "Decorrelated Jitter"). It
    grows like an exponential backoff but each wait depends on the last, not on the
    attempt number. Use it for the fewest total pokes per success in contended sources;
    prefer :class:`FullJitter` around :class:`Exponential` for predictable growth.

    :param base: the shortest wait and the first one, >= ``MIN_INTERVAL``.
    :param cap: the longest wait, >= ``base``.
    """

    kind: ClassVar[str] = "decorrelated_jitter"
    base: float
    cap: float

    def __post_init__(self) -> None:
        base = check_seconds(self, "base")
        check_number(self, "cap", base, bound="base")

    @property
    def max_interval(self) -> float:
        """Return ``cap``."""
        return self.cap

    def next_interval(self, state: PollState, rng: random.Random) -> float:
        """Return ``min(cap, uniform(base, max(base, previous * 3)))``."""
        # Bounding the range by `cap` first keeps `uniform` finite for huge caps.
        high = min(self.cap, max(self.base, state.previous * 3))
        return min(self.cap, rng.uniform(self.base, high))
