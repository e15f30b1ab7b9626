"""The poll loop's bookkeeping: where a window stands in its schedule, what a run has seen."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from waitwise.triggers.errors import PolicyConfigError
from waitwise.triggers.events import FoundItem, WaitPayload, WaitStatus
from waitwise.triggers.policy import (
    MIN_INTERVAL,
    IntervalPolicy,
    PollState,
    interval_at,
    is_flat,
    resume,
)

log = logging.getLogger("waitwise.triggers.base")


def positive_seconds(name: str, value: object) -> float:
    """Normalize a duration (number or :class:`~datetime.timedelta`) to float seconds > 0.

    :raises PolicyConfigError: naming ``name`` and the value when it is not a positive duration.
    """
    if isinstance(value, dt.timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PolicyConfigError(f"{name} must be a number of seconds, got {value!r}")
    if not value > 0 or value == float("inf"):
        raise PolicyConfigError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def optional_seconds(name: str, value: object) -> float | None:
    """Return :func:`positive_seconds` of ``value``, or ``None`` for ``None``."""
    return None if value is None else positive_seconds(name, value)


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


@dataclass(slots=True)
class Tally:
    """What this trigger run has seen so far (counts restart with the run)."""

    started_at: float
    deadline: float
    pokes: int = 0
    errors: int = 0
    errors_in_row: int = 0
    reopens: int = 0
    last_error: str | None = None
    found: list[FoundItem] = field(default_factory=list)
    first_seen_at: float | None = None

    def payload(self, status: WaitStatus, message: str, now: float) -> WaitPayload:
        """Return the event payload for a wait that ends ``now``."""
        return WaitPayload(
            status=status.value,
            message=message,
            found=self.found,
            first_seen_at=self.first_seen_at,
            pokes=self.pokes,
            reopens=self.reopens,
            errors=self.errors,
            last_error=self.last_error,
            started_at=self.started_at,
            deadline=self.deadline,
            ended_at=now,
            elapsed_s=round(now - self.started_at, 6),
        )


def settle_poke(
    tally: Tally,
    result: list[FoundItem] | Exception,
    now: float,
    *,
    schedule: Schedule,
    closes_at: float,
    error_delay: Callable[[int], float],
    max_errors: int,
    name: str,
) -> WaitStatus | float:
    """Record one poke's result; return how the wait ends, or seconds until the next poke.

    Found ends it (``SUCCESS``); more than ``max_errors`` errors in a row end it (``ERROR``);
    otherwise the next poke comes ``error_delay(errors_in_row)`` after an error, or at the
    schedule's next nominal time, never past ``closes_at`` and never sooner than
    ``MIN_INTERVAL``; at or past ``closes_at`` the wait ends (``TIMEOUT``).  Shared by the
    poll hub and the per-trigger loop, so both decide alike.
    """
    tally.pokes += 1
    if isinstance(result, Exception):
        tally.errors += 1
        tally.errors_in_row += 1
        tally.last_error = f"{type(result.__cause__ or result).__name__}: {result}"
        if tally.errors_in_row > max_errors:
            return WaitStatus.ERROR
        delay = max(min(error_delay(tally.errors_in_row), closes_at - now), MIN_INTERVAL)
        log.warning(
            "Probe of %s failed (%d in a row, limit %d): retrying in %.3fs: %s",
            name,
            tally.errors_in_row,
            max_errors,
            delay,
            tally.last_error,
        )
    elif result:
        tally.errors_in_row = 0
        tally.found, tally.first_seen_at = result, now
        return WaitStatus.SUCCESS
    else:
        tally.errors_in_row = 0
        delay = schedule.delay_until_next(now, closes_at)
    return WaitStatus.TIMEOUT if now >= closes_at else delay


def decisions_logged() -> bool:
    """Return whether :func:`log_decision` lines are switched on (its logger at DEBUG)."""
    return log.isEnabledFor(logging.DEBUG)


def log_decision(
    name: str, tally: Tally, schedule: Schedule, closes_at: float, delay: float
) -> None:
    """Log one not-yet decision at DEBUG: the poke, the time to the next one and what chose it.

    The reason is the probe-error backoff after an error, the deadline when the next nominal
    poke falls past ``closes_at``, else the policy (with the schedule attempt of that poke).
    Used by the poll hub and the per-trigger loop alike; they ask :func:`decisions_logged`
    first (the hub once per batch).
    """
    if tally.errors_in_row:
        why = f"probe error backoff ({tally.errors_in_row} in a row)"
    elif schedule.clamped(closes_at):
        why = "deadline clamp"
    else:
        why = f"policy, schedule attempt {schedule.state.attempt}"
    log.debug("%s not found at poke %d: next poke in %.3fs (%s)", name, tally.pokes, delay, why)
