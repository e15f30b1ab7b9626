"""What one wait has seen so far, and the one decision after every poke.

:class:`Tally` is the only mutable state of a running wait; :func:`settle_poke` is the only
code that moves it after a poke (the poll hub calls it for every wait of every kind), and
:meth:`Tally.reopened` the only code that moves it between windows.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

from waitwise.triggers.clock import Clock
from waitwise.triggers.errors import ProbeError, error_kind
from waitwise.triggers.events import FoundItem, WaitPayload, WaitStatus
from waitwise.triggers.policy import MIN_INTERVAL, Schedule

log = logging.getLogger("waitwise.triggers.base")

ProbeResult = list[FoundItem] | BaseException
"""What a check returns for one query: what it found (empty: not yet), or the error.

A :class:`~waitwise.triggers.errors.ProbeError` is transient (retried with the retry
strategy's backoff); any other exception ends that wait alone as an error.
"""


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
    last_error_kind: str | None = None
    found: list[FoundItem] = field(default_factory=list)
    first_seen_at: float | None = None
    last_miss_at: float | None = None  # the last poke that found nothing: arrival came after
    model_version: str | None = None  # the arrival model a learned policy planned with
    eta: dict[str, float] | None = None  # its prediction at the start, epoch seconds
    poke_times: list[float] | None = None  # kept for learned policies: logged at the end

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
            model_version=self.model_version,
            eta=self.eta,
        )

    def reopened(self, index: int) -> None:
        """Note that window ``index`` (0: the first) is the one being polled."""
        self.reopens = index

    def failed(self, exc: BaseException) -> None:
        """Count one failed check (its kind kept as data, its text for people)."""
        self.errors += 1
        self.errors_in_row += 1
        self.last_error_kind = error_kind(exc)
        self.last_error = f"{self.last_error_kind}: {exc}"


def settle_poke(
    tally: Tally,
    result: ProbeResult,
    now: float,
    *,
    schedule: Schedule,
    closes_at: float,
    error_delay: Callable[[int], float],
    max_errors: int,
    name: str,
) -> WaitStatus | float:
    """Record one poke's result; return how the wait ends, or seconds until the next poke.

    Found ends it (``SUCCESS``).  A transient :class:`ProbeError`: the next poke comes
    ``max(error_delay(errors_in_row), retry_after_s)`` later (``retry_after_s``: what the
    source asked for, if it did), and more than ``max_errors`` in a row end it
    (``ERROR``).  Any other exception ends it at once (``ERROR``): the check cannot work.
    Not found: the schedule's next nominal time.  Never past ``closes_at`` and never sooner
    than ``MIN_INTERVAL``; at or past ``closes_at`` the wait ends (``TIMEOUT``).
    """
    tally.pokes += 1
    if tally.poke_times is not None and len(tally.poke_times) < MAX_POKE_TIMES:
        tally.poke_times.append(now)
    if isinstance(result, BaseException):
        tally.failed(result)
        if not isinstance(result, ProbeError) or tally.errors_in_row > max_errors:
            return WaitStatus.ERROR
        backoff = max(error_delay(tally.errors_in_row), result.retry_after_s or 0.0)
        delay = max(min(backoff, closes_at - now), MIN_INTERVAL)
        log.warning(
            "Probe of %s failed (%d in a row, limit %d): retrying in %.3fs%s: %s",
            name,
            tally.errors_in_row,
            max_errors,
            delay,
            "" if result.retry_after_s is None else f" (asked: {result.retry_after_s:g}s)",
            tally.last_error,
        )
    elif result:
        tally.errors_in_row = 0
        tally.found, tally.first_seen_at = result, now
        return WaitStatus.SUCCESS
    else:
        tally.errors_in_row = 0
        tally.last_miss_at = now
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
    The hub asks :func:`decisions_logged` once per batch first.
    """
    if tally.errors_in_row:
        why = f"probe error backoff ({tally.errors_in_row} in a row)"
    elif schedule.clamped(closes_at):
        why = "deadline clamp"
    else:
        why = f"policy, schedule attempt {schedule.state.attempt}"
    log.debug("%s not found at poke %d: next poke in %.3fs (%s)", name, tally.pokes, delay, why)


MAX_POKE_TIMES: Final = 1_000
"""Poke times a learned wait keeps for its closing log line."""
DELIVERY_PAUSES: Final = (1.0, 4.0)
"""Seconds before the second and third attempt to deliver what a wait learned."""


async def deliver(action: Callable[[], Awaitable[None]], clock: Clock, what: str) -> bool:
    """Run ``action`` until it succeeds, at most three times; return whether it did.

    For what must outlive a wait's outcome (its history record, its XCom): a failure is
    retried after :data:`DELIVERY_PAUSES`, then logged with its traceback, never raised.
    """
    for pause in (*DELIVERY_PAUSES, None):
        try:
            await action()
        except Exception as exc:  # the outcome stands whatever the store or API does
            if pause is None:
                log.exception("%s failed three times; giving up", what)
                return False
            log.warning(
                "%s failed (%s: %s); retrying in %.0fs", what, type(exc).__name__, exc, pause
            )
            await clock.sleep(pause)
        else:
            return True
    return False  # pragma: no cover - the loop returns on its last attempt
