"""The contract every poll policy meets, and the JSON shape of its config."""

from __future__ import annotations

import random
from typing import Final, Protocol, TypeAlias, runtime_checkable

from .state import PollState

__all__ = ["JSON", "MIN_INTERVAL", "IntervalPolicy"]

JSON: TypeAlias = str | int | float | bool | list["JSON"] | dict[str, "JSON"] | None

MIN_INTERVAL: Final = 0.01
"""The shortest wait, in seconds, between two pokes.

Every duration parameter of a policy must be at least this, and the schedule raises any
shorter interval (a full jitter drawing ``0.0``, a buggy custom policy) to it, so a poll
loop can never spin without sleeping.
"""


@runtime_checkable
class IntervalPolicy(Protocol):
    """Decide how long to wait after each poke: a pure function of ``(state, rng)``.

    Implementations are frozen value objects with no hidden counters, so a policy
    rebuilt from :meth:`to_config` on another triggerer behaves identically. A policy
    may also expose ``monotone: bool``: ``True`` promises that its intervals never
    decrease from one attempt to the next, whatever the rng and previous interval, which
    lets :func:`~waitwise.triggers.policy.schedule.resume` skip a schedule's flat tail.
    """

    @property
    def max_interval(self) -> float:
        """Return the largest interval this policy can ever return, in seconds."""

    def next_interval(self, state: PollState, rng: random.Random) -> float:
        """Return the seconds to wait after poke number ``state.attempt``.

        :param state: where the wait stands at this poke.
        :param rng: the only source of randomness; seeded per attempt by the caller.
        """

    def to_config(self) -> dict[str, JSON]:
        """Return the policy as plain JSON, with a ``"kind"`` discriminator."""
