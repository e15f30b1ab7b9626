"""Deterministic backoff: constant, linear, exponential, and a cap on any policy."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import ClassVar

from ._base import (
    PolicyBase,
    check_number,
    check_policy,
    check_seconds,
    steps,
)
from .protocol import IntervalPolicy
from .state import PollState

__all__ = ["Capped", "Constant", "Exponential", "Linear"]


@dataclass(frozen=True, slots=True)
class Constant(PolicyBase):
    """Wait the same ``interval`` seconds after every poke.

    Formula: ``interval``. This is Airflow's default ``poke_interval`` behaviour. Use it
    for a cheap source and short waits; prefer :class:`Exponential` for long waits, and
    wrap it in a jitter when many sensors poll the same source at once.

    :param interval: seconds between pokes, >= ``MIN_INTERVAL``.
    """

    kind: ClassVar[str] = "constant"
    interval: float

    def __post_init__(self) -> None:
        check_seconds(self, "interval")

    @property
    def max_interval(self) -> float:
        """Return ``interval``."""
        return self.interval

    @property
    def monotone(self) -> bool:
        """Return ``True``: a constant never decreases."""
        return True

    def next_interval(self, state: PollState, rng: random.Random) -> float:
        """Return ``interval``; ``state`` and ``rng`` are unused."""
        return self.interval


@dataclass(frozen=True, slots=True)
class Linear(PolicyBase):
    """Wait ``increment`` seconds longer after each poke, up to ``cap``.

    Formula: ``min(initial + increment * (attempt - 1), cap)``. Use it when the chance
    of success fades slowly with time; it backs off more gently than
    :class:`Exponential`.

    :param initial: seconds to wait after the first poke, >= ``MIN_INTERVAL``.
    :param increment: seconds added per poke, >= 0.
    :param cap: the longest wait, >= ``initial``.
    """

    kind: ClassVar[str] = "linear"
    initial: float
    increment: float
    cap: float

    def __post_init__(self) -> None:
        initial = check_seconds(self, "initial")
        check_number(self, "increment", 0)
        check_number(self, "cap", initial, bound="initial")

    @property
    def max_interval(self) -> float:
        """Return ``cap``, or ``initial`` when ``increment`` is 0."""
        return self.cap if self.increment else self.initial

    @property
    def monotone(self) -> bool:
        """Return ``True``: the interval only grows until the cap."""
        return True

    def next_interval(self, state: PollState, rng: random.Random) -> float:
        """Return ``min(initial + increment * (attempt - 1), cap)``; ignore ``rng``."""
        return min(self.initial + self.increment * steps(state.attempt), self.cap)


@dataclass(frozen=True, slots=True)
class Exponential(PolicyBase):
    """Multiply the wait by ``factor`` after each poke, up to ``cap``.

    Formula: ``min(initial * factor ** (attempt - 1), cap)``; overflow yields ``cap``.
    The usual choice for long waits on a source that should not be hammered. Without
    jitter, sensors started together poke together: wrap it in a jitter when they share
    a source.

    :param initial: seconds to wait after the first poke, >= ``MIN_INTERVAL``.
    :param factor: growth per poke, >= 1.
    :param cap: the longest wait, >= ``initial``.
    """

    kind: ClassVar[str] = "exponential"
    initial: float
    factor: float
    cap: float

    def __post_init__(self) -> None:
        initial = check_seconds(self, "initial")
        check_number(self, "factor", 1)
        check_number(self, "cap", initial, bound="initial")

    @property
    def max_interval(self) -> float:
        """Return ``cap``, or ``initial`` when ``factor`` is 1."""
        return self.cap if self.factor > 1 else self.initial

    @property
    def monotone(self) -> bool:
        """Return ``True``: the interval only grows until the cap."""
        return True

    def next_interval(self, state: PollState, rng: random.Random) -> float:
        """Return ``min(initial * factor ** (attempt - 1), cap)``; ``rng`` is unused."""
        try:
            return min(self.initial * self.factor ** steps(state.attempt), self.cap)
        except OverflowError:
            return self.cap


@dataclass(frozen=True, slots=True)
class Capped(PolicyBase):
    """Cap any policy's interval at ``cap`` seconds.

    Formula: ``min(inner, cap)``. Use it to bound a policy that has no cap of its own,
    or to tighten one without rebuilding it.

    :param inner: the policy whose intervals are capped.
    :param cap: the longest wait, >= ``MIN_INTERVAL``.
    """

    kind: ClassVar[str] = "capped"
    inner: IntervalPolicy
    cap: float

    def __post_init__(self) -> None:
        check_policy(self, "inner")
        check_seconds(self, "cap")

    @property
    def max_interval(self) -> float:
        """Return ``min(inner.max_interval, cap)``."""
        return min(self.inner.max_interval, self.cap)

    @property
    def monotone(self) -> bool:
        """Return whether ``inner`` is monotone: capping keeps that."""
        return getattr(self.inner, "monotone", False) is True

    def next_interval(self, state: PollState, rng: random.Random) -> float:
        """Return ``min(inner.next_interval(state, rng), cap)``."""
        return min(self.inner.next_interval(state, rng), self.cap)
