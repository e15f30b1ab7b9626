"""Turn a policy and a stable key into a reproducible schedule; resume it on restart.

Interval ``k`` of the schedule for ``key`` is ``policy.next_interval(state_k,
rng_for(key, k))``, raised to :data:`MIN_INTERVAL`, where ``state_k`` is the poke number
``k`` at the nominal time ``elapsed = interval_1 + ... + interval_(k-1)``. Each
attempt draws from its own rng, a stream of digests of ``(key, k)``, so the schedule is
the same in every process and on every machine, and a restarted trigger can find its
place in it from the time elapsed alone.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Final

from ._digest_random import DigestRandom
from .protocol import MIN_INTERVAL, IntervalPolicy
from .state import PollState

__all__ = [
    "MAX_ELAPSED",
    "MAX_REPLAY",
    "Schedule",
    "interval_at",
    "intervals",
    "is_flat",
    "resume",
    "rng_for",
]

MAX_REPLAY: Final = 256
"""Pokes :func:`resume` replays one by one before it extrapolates (see there)."""

MAX_ELAPSED: Final = 1e12
"""The longest wait :func:`resume` accepts, in seconds (about 31,700 years).

Below it a float still resolves :data:`MIN_INTERVAL`, so every replayed step advances.
"""


def rng_for(key: str, attempt: int) -> random.Random:
    """Return the rng for poke ``attempt`` of the wait identified by ``key``.

    Its draws are the digests ``blake2b(f"{key}#{attempt}#{i}")`` (never Python's salted
    ``hash()``), so the stream is the same on every machine, each attempt's rng is
    independent of the others, and policies that draw nothing pay nothing.

    :param key: a stable identity of the wait, e.g. dag/task/run/map index.
    :param attempt: the poke number, as in :attr:`PollState.attempt`.
    """
    return DigestRandom(key, attempt)


def interval_at(policy: IntervalPolicy, key: str, state: PollState) -> float:
    """Return the seconds to wait after the poke at ``state``: one step of the schedule.

    This is ``policy.next_interval(state, rng_for(key, state.attempt))`` raised to
    :data:`MIN_INTERVAL`, so a poll loop that sleeps it can never spin.

    :param policy: the poll policy.
    :param key: the stable key of the wait.
    :param state: the poke just made.
    :raises ValueError: if the policy returns NaN or infinity.
    """
    interval = policy.next_interval(state, rng_for(key, state.attempt))
    if not math.isfinite(interval):
        raise ValueError(f"{policy!r} returned a non-finite interval {interval!r}")
    return max(interval, MIN_INTERVAL)


def intervals(policy: IntervalPolicy, key: str) -> Iterator[float]:
    """Yield the schedule's intervals, the wait after poke 1, 2, ..., forever.

    :param policy: the poll policy.
    :param key: the stable key of the wait; the same key always gives the same schedule.
    """
    state = PollState()
    while True:
        interval = interval_at(policy, key, state)
        yield interval
        state = state.advance(interval)


def is_flat(policy: IntervalPolicy, interval: float) -> bool:
    """Return whether every interval after ``interval`` equals it.

    True when a monotone policy (``policy.monotone``: intervals never shrink) has returned
    its ``max_interval``: from there the schedule is one constant step.
    """
    return interval == policy.max_interval and getattr(policy, "monotone", False) is True


def resume(policy: IntervalPolicy, key: str, elapsed: float) -> PollState:
    """Return where a wait that started ``elapsed`` seconds ago stands in its schedule.

    The result is the last nominal poke at or before ``elapsed`` (the poke at 0 is
    attempt 1): ``state.elapsed <= elapsed < state.elapsed + interval_at(policy, key,
    state)``, and the next poke is due at ``state.elapsed + interval_at(...)``.

    Cost: a monotone policy (``policy.monotone``) that reaches its ``max_interval`` is
    flat from there, and the flat tail is skipped in O(1): ``Constant`` resumes in O(1),
    ``Exponential`` in O(log(cap / initial)). Other policies (jitter) are replayed poke
    by poke, but at most :data:`MAX_REPLAY` pokes at a time: past that, the remaining
    time is covered with the mean interval of the last :data:`MAX_REPLAY` pokes, which
    is deterministic but an estimate of the attempt number, not the exact replay.

    :param policy: the poll policy.
    :param key: the stable key of the wait.
    :param elapsed: seconds since the wait started. A negative value (the clock moved
        back) resumes at the first poke.
    :raises ValueError: if ``elapsed`` is NaN or above :data:`MAX_ELAPSED`.
    """
    target = _check_elapsed(elapsed)
    state = mark = PollState()
    while True:
        interval = interval_at(policy, key, state)
        if state.elapsed + interval > target:
            return state
        if is_flat(policy, interval):
            return _skip_flat(state, interval, target)
        state = state.advance(interval)
        if state.attempt - mark.attempt >= MAX_REPLAY:
            state = mark = _extrapolate(mark, state, target)


def _check_elapsed(elapsed: float) -> float:
    if not elapsed <= MAX_ELAPSED:
        raise ValueError(f"elapsed must be a number <= {MAX_ELAPSED}, got {elapsed!r}")
    return max(elapsed, 0.0)


def _skip_flat(state: PollState, interval: float, target: float) -> PollState:
    """Return the last poke at or before ``target`` when every interval is ``interval``.

    The caller has checked that the poke after ``state`` is at or before ``target``.
    """
    # Jump one poke short of the quotient, which rounding cannot carry past `target`
    # (below MAX_ELAPSED a float resolves far finer than MIN_INTERVAL), then step with
    # the same additions as `advance`, so the result meets `resume`'s contract exactly.
    pokes = max(int((target - state.elapsed) // interval) - 1, 1)
    state = PollState(state.attempt + pokes, state.elapsed + pokes * interval, interval)
    while state.elapsed + interval <= target:
        state = state.advance(interval)
    return state


def _extrapolate(mark: PollState, state: PollState, target: float) -> PollState:
    """Skip ahead at the mean interval since ``mark``, to a mean short of ``target``."""
    stride = (state.elapsed - mark.elapsed) / (state.attempt - mark.attempt)
    pokes = int((target - state.elapsed) // stride) - 1
    if pokes <= 0:
        return state
    return PollState(state.attempt + pokes, state.elapsed + pokes * stride, state.previous)


class Schedule:
    """Where a window stands in its nominal poke schedule (pure arithmetic, no I/O).

    Poke *k* of the window is due at ``opens_at + T_k``, ``T_k`` the sum of the first
    *k - 1* intervals of ``policy`` under ``key``; :meth:`resumed` finds the place from the
    time alone, so a rebuilt trigger continues instead of starting over.

    Once a monotone policy returns its ``max_interval`` every later interval is that value
    (``flat``): from then on poke ``k + m`` is due at ``flat_from + m * flat`` (``flat_from``
    the nominal time of poke ``k``), so the steady state of a constant or capped policy costs
    one multiplication per poke: no policy call, no new :class:`PollState`.
    """

    __slots__ = ("_flat_from", "_state", "_steps", "flat", "key", "opens_at", "policy")

    def __init__(self, policy: IntervalPolicy, key: str, opens_at: float, state: PollState) -> None:
        self.policy, self.key, self.opens_at = policy, key, opens_at
        self._state = state  # the policy's state at the last poke before the flat tail
        self.flat: float | None = None
        self._flat_from = 0.0  # nominal time of the first poke of the flat tail
        self._steps = 0  # pokes since then

    @classmethod
    def resumed(cls, policy: IntervalPolicy, key: str, opens_at: float, now: float) -> Schedule:
        """Return the schedule of a window that opened at ``opens_at``, as of ``now``."""
        return cls(policy, key, opens_at, resume(policy, key, max(now - opens_at, 0.0)))

    @property
    def state(self) -> PollState:
        """Return the policy state at the next nominal poke."""
        if self.flat is None:
            return self._state
        return PollState(
            self._state.attempt + self._steps,
            self.next_at - self.opens_at,
            self.flat,
        )

    @property
    def next_at(self) -> float:
        """Return the nominal time of the next poke."""
        if self.flat is None:
            return self.opens_at + self._state.elapsed
        return self._flat_from + self._steps * self.flat

    def delay_until_next(self, now: float, closes_at: float) -> float:
        """Return seconds until the first nominal poke after ``now``, clamped to ``closes_at``."""
        flat = self.flat
        if flat is None:
            self._walk(now)
            flat = self.flat
        if flat is not None:
            due = self._flat_from + self._steps * flat
            if due <= now:
                self._steps += int((now - due) // flat) + 1
                due = self._flat_from + self._steps * flat
        else:
            due = self.opens_at + self._state.elapsed
        return max(min(due, closes_at) - now, MIN_INTERVAL)

    def _walk(self, now: float) -> None:
        """Ask the policy for intervals until the next poke lies after ``now`` or is flat."""
        while self.opens_at + self._state.elapsed <= now:
            interval = interval_at(self.policy, self.key, self._state)
            if is_flat(self.policy, interval):
                self.flat = interval
                self._flat_from = self.opens_at + self._state.elapsed + interval
                self._steps = 0
                self._state = self._state.advance(interval)  # attempt and elapsed at _flat_from
                return
            self._state = self._state.advance(interval)

    def clamped(self, closes_at: float) -> bool:
        """Return whether the next nominal poke falls after ``closes_at``."""
        return self.next_at > closes_at
