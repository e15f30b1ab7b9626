"""A source's health, 0-100: one number from its recent waits and its breaker.

Over the source's last ``window`` finished waits (the final record of each task-instance
try: success, timeout, skipped or error; re-opened, rejected and cancelled waits say
nothing about the source), with ``target`` the profile's reliability::

    S = min(1, success_rate / target)                                 successes vs target
    T = 1 if timeout_rate <= 1 - target                               timeouts allowed
        else max(0, 1 - (timeout_rate - (1 - target)) / target)
    W = 1 if trend <= 1.2 else max(0, 1 - (trend - 1.2) / 1.8)        waits getting longer
        trend = median wait of the newer half of successes / of the older half
    B = 1 closed, 0.5 half-open, 0 open or forced open (1 forced closed: an operator's call)
    score = round(100 * (0.40 S + 0.25 T + 0.20 W + 0.15 B))

A source that meets its target with steady waits and a closed breaker scores 100; one
whose every wait times out with an open breaker scores 0 or close to it; a wait time that
doubled costs 9 points.  Pure: the monitoring report and the alerts read the same function.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from waitwise.triggers.breaker import BreakerSnapshot, BreakerState
from waitwise.triggers.store.records import WaitOutcome, WaitRecord

__all__ = ["WEIGHTS", "Health", "health"]

WEIGHTS: Final = {"success": 0.40, "timeouts": 0.25, "trend": 0.20, "breaker": 0.15}
_FINAL: Final = frozenset(
    {WaitOutcome.SUCCESS, WaitOutcome.TIMEOUT, WaitOutcome.SKIPPED, WaitOutcome.ERROR}
)
_BREAKER: Final = {
    BreakerState.CLOSED: 1.0,
    BreakerState.HALF_OPEN: 0.5,
    BreakerState.OPEN: 0.0,
    BreakerState.FORCED_OPEN: 0.0,
    BreakerState.FORCED_CLOSED: 1.0,
}


@dataclass(frozen=True, slots=True)
class Health:
    """A source's health and the parts it is made of (module docstring).

    :param score: 0-100.
    :param waits: finished waits it was computed from.
    :param success_rate: share of them that succeeded.
    :param timeout_rate: share that timed out (failed or skipped).
    :param trend: newer / older median successful wait, ``1.0`` with fewer than 4.
    :param breaker: the breaker's state, ``None`` without one.
    :param parts: each part's value in [0, 1], by the names of :data:`WEIGHTS`.
    """

    score: int
    waits: int
    success_rate: float
    timeout_rate: float
    trend: float
    breaker: str | None
    parts: dict[str, float]


def health(
    records: Sequence[WaitRecord],
    *,
    target: float,
    breaker: BreakerSnapshot | None = None,
    window: int = 50,
) -> Health | None:
    """Return the health of a source from its records (any order), ``None`` with no waits.

    :param target: the profile's reliability, in (0, 1].
    :param breaker: the source's breaker snapshot, if it has one.
    :param window: the newest finished waits considered.
    :raises ValueError: for a target outside (0, 1] or a window < 1.
    """
    if not 0.0 < target <= 1.0:
        raise ValueError(f"target must be in (0, 1], got {target!r}")
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window!r}")
    final = {r.key: r for r in sorted(records, key=lambda r: r.order) if r.outcome in _FINAL}
    recent = sorted(final.values(), key=lambda r: r.order)[-window:]
    if not recent:
        return None
    n = len(recent)
    success = sum(r.outcome is WaitOutcome.SUCCESS for r in recent) / n
    timeouts = sum(r.outcome in (WaitOutcome.TIMEOUT, WaitOutcome.SKIPPED) for r in recent) / n
    trend = _trend(recent)
    allowed = 1.0 - target
    parts = {
        "success": min(1.0, success / target),
        "timeouts": 1.0 if timeouts <= allowed else max(0.0, 1.0 - (timeouts - allowed) / target),
        "trend": 1.0 if trend <= 1.2 else max(0.0, 1.0 - (trend - 1.2) / 1.8),
        "breaker": 1.0 if breaker is None else _BREAKER[breaker.state],
    }
    score = round(100 * sum(WEIGHTS[name] * value for name, value in parts.items()))
    state = None if breaker is None else breaker.state.value
    return Health(score, n, success, timeouts, trend, state, parts)


def _trend(recent: Sequence[WaitRecord]) -> float:
    waits = [
        r.detected_at - r.started_at
        for r in recent
        if r.outcome is WaitOutcome.SUCCESS and r.detected_at is not None
    ]
    if len(waits) < 4:
        return 1.0
    half = len(waits) // 2
    older, newer = statistics.median(waits[:half]), statistics.median(waits[half:])
    if older <= 0:
        return 1.0 if newer <= 0 else float("inf")
    return newer / older
