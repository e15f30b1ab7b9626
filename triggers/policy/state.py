"""The state a poll policy reads: where a wait stands after a poke."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PollState"]


@dataclass(frozen=True, slots=True)
class PollState:
    """Where a wait stands at the moment of a poke, on the schedule's nominal clock.

    The first poke happens at ``elapsed == 0.0`` and is ``attempt == 1``; after poke
    ``n`` the policy is asked for the interval to wait before poke ``n + 1``.

    :param attempt: pokes completed so far, >= 1.
    :param elapsed: nominal seconds since the wait started, at the moment of this poke:
        the sum of the intervals returned before it.
    :param previous: the previous interval returned, ``0.0`` before the first.
    """

    attempt: int = 1
    elapsed: float = 0.0
    previous: float = 0.0

    def __post_init__(self) -> None:
        if self.attempt < 1:
            raise ValueError(f"PollState.attempt must be >= 1, got {self.attempt!r}")
        # Written as `not >=` so that NaN is rejected too.
        if not self.elapsed >= 0.0:
            raise ValueError(f"PollState.elapsed must be >= 0, got {self.elapsed!r}")
        if not self.previous >= 0.0:
            raise ValueError(f"PollState.previous must be >= 0, got {self.previous!r}")

    def advance(self, interval: float) -> PollState:
        """Return the state at the next poke, ``interval`` seconds after this one.

        :param interval: the seconds waited after this poke.
        """
        return PollState(self.attempt + 1, self.elapsed + interval, interval)
