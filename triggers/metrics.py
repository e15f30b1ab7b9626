"""Metric names and sinks.  The poll loop emits through a :class:`MetricsSink`, never directly."""

from __future__ import annotations

from typing import Final, Protocol

POKES: Final = "waitwise.pokes"
PROBE_ERRORS: Final = "waitwise.probe_errors"
WAITS_SUCCEEDED: Final = "waitwise.waits.succeeded"
WAITS_TIMED_OUT: Final = "waitwise.waits.timed_out"
WAIT_SECONDS: Final = "waitwise.wait_seconds"
DETECTION_LAG: Final = "waitwise.detection_lag_seconds"


class MetricsSink(Protocol):
    """Where counters and timings go: Airflow's stats in production, a list in tests."""

    def incr(self, name: str, tags: dict[str, str], count: int = 1) -> None:
        """Add ``count`` to counter ``name``."""
        ...

    def timing(self, name: str, seconds: float, tags: dict[str, str]) -> None:
        """Record a duration in seconds."""
        ...


class NullSink:
    """Discard every metric."""

    def incr(self, name: str, tags: dict[str, str], count: int = 1) -> None:
        """Do nothing."""

    def timing(self, name: str, seconds: float, tags: dict[str, str]) -> None:
        """Do nothing."""


class StatsSink:
    """Send metrics through Airflow's own stats module (StatsD or OpenTelemetry, per config)."""

    def incr(self, name: str, tags: dict[str, str], count: int = 1) -> None:
        """Increment ``name`` by ``count`` in Airflow's stats backend."""
        from airflow.sdk.observability import stats

        stats.incr(name, count, tags=tags)

    def timing(self, name: str, seconds: float, tags: dict[str, str]) -> None:
        """Record ``seconds`` (as milliseconds, StatsD's unit) in Airflow's stats backend."""
        from airflow.sdk.observability import stats

        stats.timing(name, seconds * 1000.0, tags=tags)


WAITS_ERRORED: Final = "waitwise.waits.errored"
WAITS_REJECTED: Final = "waitwise.waits.rejected_by_breaker"
REOPENS: Final = "waitwise.waits.reopened"
BREAKER_EVENT_PREFIX: Final = "waitwise.breaker."
