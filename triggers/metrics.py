"""Metric names and sinks.  The engine emits through a :class:`MetricsSink`, never directly.

Every name is listed here; the tags of a wait's metrics are ``trigger`` (the trigger kind) and,
for waits that name a source, ``source``, ``profile`` and ``tier``.
"""

from __future__ import annotations

import logging
import re
from typing import Final, Protocol

log = logging.getLogger(__name__)

POKES: Final = "waitwise.pokes"
PROBE_ERRORS: Final = "waitwise.probe_errors"
WAITS_SUCCEEDED: Final = "waitwise.waits.succeeded"
WAITS_TIMED_OUT: Final = "waitwise.waits.timed_out"
WAIT_SECONDS: Final = "waitwise.wait_seconds"
DETECTION_LATENCY: Final = "waitwise.detection_latency"
"""Timer: a successful wait's ``first_seen_at - last_miss_at`` (its detection lag, at most)."""
ETA_ERROR: Final = "waitwise.eta_error"
"""Timer: a planned wait's ``|first_seen_at - eta_at|`` (how far its predicted arrival was)."""
WAITS_ERRORED: Final = "waitwise.waits.errored"
WAITS_REJECTED: Final = "waitwise.waits.rejected_by_breaker"
WAITS_CANCELLED: Final = "waitwise.waits.cancelled"
REOPENS: Final = "waitwise.waits.reopened"
RECORD_FAILURES: Final = "waitwise.history.write_failures"
XCOM_FAILURES: Final = "waitwise.xcom.push_failures"
BREAKER_EVENT_PREFIX: Final = "waitwise.breaker."
"""Breaker events: ``waitwise.breaker.<event>`` (:func:`breaker_event`)."""
BREAKER_UNAVAILABLE: Final = "waitwise.breaker.unavailable"
ADAPTIVE_FALLBACKS: Final = "waitwise.adaptive.fallbacks"
"""A learned policy's wait polled by its fallback: the source's history could not be read."""
ADAPTIVE_LATE: Final = "waitwise.adaptive.late"
"""A learned policy's wait polled by its fallback: its plan was not ready in time."""
ADAPTIVE_PLANNED: Final = "waitwise.adaptive.planned"
"""A learned policy's wait planned its pokes from the source's history."""
SOURCE_HEALTH: Final = "waitwise.source.health"
"""Gauge, 0-100: a source's health score (emitted by the monitoring DAG, per run)."""
SOURCE_SUCCESS_RATE: Final = "waitwise.source.success_rate"
"""Gauge, percent: a source's success rate over the report's window (monitoring DAG)."""
SOURCE_BREAKER_OPEN: Final = "waitwise.source.breaker_open"
"""Gauge, 1 or 0: whether the source's breaker rejects waits (open or forced open)."""
TIER_SUCCESS_RATE: Final = "waitwise.tier.success_rate"
"""Gauge, percent: a tier's success rate over the window, tagged ``tier`` (monitoring DAG)."""
TIER_BELOW_TARGET: Final = "waitwise.tier.below_target"
"""Gauge, 1 or 0: whether a tier's success rate is under its target (monitoring DAG)."""
ADAPTIVE_TUNED: Final = "waitwise.adaptive.tuned"
"""A source's auto-tuning recorded a change (its reason is in the change log and the log)."""


def breaker_event(event_class: str) -> str:
    """Return the metric of a breaker event class: ``BreakerHalfOpened`` -> ``...half_opened``.

    ``opened``, ``half_opened``, ``closed``, ``rejected``, ``probe_expired``, ``forced``: snake
    case like every other name (plain StatsD keeps names as they are sent).
    """
    bare = event_class.removeprefix("Breaker")
    return BREAKER_EVENT_PREFIX + re.sub(r"(?<!^)(?=[A-Z])", "_", bare).lower()


class MetricsSink(Protocol):
    """Where counters and timings go: Airflow's stats in production, a list in tests."""

    def incr(self, name: str, tags: dict[str, str], count: int = 1) -> None:
        """Add ``count`` to counter ``name``."""
        ...

    def timing(self, name: str, seconds: float, tags: dict[str, str]) -> None:
        """Record a duration in seconds."""
        ...

    def gauge(self, name: str, value: float, tags: dict[str, str]) -> None:
        """Set gauge ``name`` to ``value``."""
        ...


class StatsSink:
    """Send metrics through Airflow's own stats module (StatsD or OpenTelemetry, per config).

    Best effort: a failing metrics backend is logged, never raised into the wait that emits.
    """

    def incr(self, name: str, tags: dict[str, str], count: int = 1) -> None:
        """Increment ``name`` by ``count`` in Airflow's stats backend."""
        from airflow.sdk.observability import stats

        try:
            stats.incr(name, count, tags=tags)
        except Exception:  # a broken StatsD client must not end waits
            log.exception("emitting metric %s failed", name)

    def timing(self, name: str, seconds: float, tags: dict[str, str]) -> None:
        """Record ``seconds`` (as milliseconds, StatsD's unit) in Airflow's stats backend."""
        from airflow.sdk.observability import stats

        try:
            stats.timing(name, seconds * 1000.0, tags=tags)
        except Exception:  # a broken StatsD client must not end waits
            log.exception("emitting metric %s failed", name)

    def gauge(self, name: str, value: float, tags: dict[str, str]) -> None:
        """Set gauge ``name`` to ``value`` in Airflow's stats backend."""
        from airflow.sdk.observability import stats

        try:
            stats.gauge(name, value, tags=tags)
        except Exception:  # a broken StatsD client must not end the monitoring run
            log.exception("emitting metric %s failed", name)
