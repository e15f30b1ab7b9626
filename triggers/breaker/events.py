"""Events the breaker emits for the caller to drain to logs and metrics, and ``format_utc``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeAlias

from waitwise.triggers.breaker.model import BreakerState

__all__ = [
    "BreakerClosed",
    "BreakerEvent",
    "BreakerForced",
    "BreakerHalfOpened",
    "BreakerOpened",
    "BreakerProbeExpired",
    "BreakerRejected",
    "format_utc",
]


@dataclass(frozen=True, slots=True)
class _Event:
    source: str
    at: float


@dataclass(frozen=True, slots=True)
class BreakerOpened(_Event):
    """Opened (from CLOSED, or from HALF_OPEN after a failed probe)."""

    failures: int
    reason: str


@dataclass(frozen=True, slots=True)
class BreakerHalfOpened(_Event):
    """The cooldown elapsed and the first probe was granted."""

    opened_at: float


@dataclass(frozen=True, slots=True)
class BreakerClosed(_Event):
    """A half-open probe succeeded and the breaker closed."""

    reason: str


@dataclass(frozen=True, slots=True)
class BreakerRejected(_Event):
    """A wait was rejected; ``half_open_at`` is ``None`` while forced open."""

    reason: str
    half_open_at: float | None


@dataclass(frozen=True, slots=True)
class BreakerProbeExpired(_Event):
    """In-flight probes were deemed abandoned and a fresh probe was granted."""

    probe_started_at: float
    probes_dropped: int


@dataclass(frozen=True, slots=True)
class BreakerForced(_Event):
    """An operator forced the breaker (or reset it)."""

    previous: BreakerState
    state: BreakerState
    note: str


BreakerEvent: TypeAlias = (
    BreakerOpened
    | BreakerHalfOpened
    | BreakerClosed
    | BreakerRejected
    | BreakerProbeExpired
    | BreakerForced
)


def format_utc(at: float) -> str:
    """Format epoch seconds as ISO-8601 UTC, e.g. ``2024-05-01T06:00:00Z``."""
    try:
        moment = datetime.fromtimestamp(at, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return f"epoch {at!r}"
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
