"""Scenario generators: simulated arrivals, deterministic for a seed (pure).

One generator serves the policy benchmark (``devtools/bench/policies.py``), the demo and
``waitwise simulate``.  A generator returns :class:`~waitwise.triggers.adaptive.Arrival`
values for waits ``first .. first + count - 1`` of a time line starting at :data:`ORIGIN` (a
Monday, midnight UTC): one wait an hour for :func:`uniform`, one a day at 06:00 UTC for the
daily ones.  The same ``(count, seed, first)`` always gives the same waits.

- :func:`uniform`: the exercise's three sources (:data:`SOURCES`): financial lands 10-60 s
  after the start (timeout 5 min), customer 5-30 min (timeout 45 min), partner 30 min-4 h or,
  for 20% of the waits, never (timeout 4 h 30).
- :func:`daily`: Normal(2 h, 15 min) after the start, 30 min later on Wednesdays, 85% of
  weekend waits never land, 5% of the others land 1-3 h late; timeout 6 h.
- :func:`drift`: ``daily`` without the weekly pattern, 3 min later every day.
- :func:`outage`: ``daily`` without the weekly pattern, and the last 4 days of every 60
  nothing lands at all.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from waitwise.triggers.adaptive.replay import Arrival

__all__ = [
    "CUSTOMER",
    "DAILY",
    "DRIFT",
    "FINANCIAL",
    "ORIGIN",
    "OUTAGE",
    "PARTNER",
    "SOURCES",
    "DailyPattern",
    "UniformSource",
    "daily",
    "daily_earliest",
    "daily_like",
    "day_number",
    "drift",
    "lands_probability",
    "mean_s",
    "outage",
    "start_s",
    "uniform",
    "uniform_earliest",
]

MINUTE: Final = 60.0
HOUR: Final = 3600.0
ORIGIN: Final = datetime(2001, 1, 1, tzinfo=UTC)
"""Number 0 of every scenario's time line (a Monday, midnight UTC)."""
DAILY_AT: Final = timedelta(hours=6)
"""The daily scenarios' scheduled time of day (UTC)."""
WEDNESDAY, SATURDAY = 2, 5
SD_RANGE: Final = 4.0
"""The earliest arrival of a normal: the mean less this many standard deviations."""


@dataclass(frozen=True, slots=True)
class UniformSource:
    """A source whose data lands uniformly in ``[low_s, high_s]`` after the start, or never.

    :param name: the source's name in the table.
    :param low_s: the earliest arrival, seconds after the start.
    :param high_s: the latest arrival.
    :param timeout_s: the wait's timeout.
    :param never: the share of waits whose data never lands.
    """

    name: str
    low_s: float
    high_s: float
    timeout_s: float
    never: float = 0.0


FINANCIAL = UniformSource("financial", 10.0, 60.0, 5 * MINUTE)
CUSTOMER = UniformSource("customer", 5 * MINUTE, 30 * MINUTE, 45 * MINUTE)
PARTNER = UniformSource("partner", 30 * MINUTE, 4 * HOUR, 4.5 * HOUR, never=0.2)
SOURCES = (FINANCIAL, CUSTOMER, PARTNER)


def uniform(
    source: UniformSource,
    count: int,
    seed: int,
    first: int = 0,
    every: timedelta = timedelta(hours=1),
) -> list[Arrival]:
    """Return waits ``every`` apart, started at their scheduled time, landing uniform in range.

    The exercise's sources (:data:`SOURCES`): ``source.never`` of the waits never land.
    """
    rng = random.Random(seed)
    waits = []
    for number in range(first, first + count):
        lands = rng.random() >= source.never
        offset = rng.uniform(source.low_s, source.high_s)
        scheduled = ORIGIN + every * number
        waits.append(Arrival(scheduled, offset if lands else None, source.timeout_s))
    return waits


def uniform_earliest(source: UniformSource, wait: Arrival) -> float | None:
    """Return the source's earliest arrival (``None`` if it never lands at all)."""
    return source.low_s if source.never < 1.0 else None


@dataclass(frozen=True, slots=True)
class DailyPattern:
    """One wait a day at 06:00 UTC, the data landing about ``typical_s`` after the start.

    Day ``d``'s sensor starts ``drift_per_day_s * d`` after its scheduled time; the data
    lands at ``start + typical_s + Normal(0, sd_s)`` (``wednesday_delay_s`` later on
    Wednesdays when ``weekly``), ``late_share`` of the landing waits another uniform
    ``[late_low_s, late_high_s]`` later.  With ``weekly``, ``weekend_never`` of Saturday's
    and Sunday's waits never land; with ``outage_every_days``, nothing lands on the last
    ``outage_days`` days of each such period.
    """

    typical_s: float = 2 * HOUR
    sd_s: float = 15 * MINUTE
    timeout_s: float = 6 * HOUR
    late_share: float = 0.05
    late_low_s: float = 1 * HOUR
    late_high_s: float = 3 * HOUR
    weekly: bool = False
    wednesday_delay_s: float = 30 * MINUTE
    weekend_never: float = 0.85
    drift_per_day_s: float = 0.0
    outage_every_days: int = 0
    outage_days: int = 4


DAILY = DailyPattern(weekly=True)
DRIFT = DailyPattern(drift_per_day_s=3 * MINUTE)
OUTAGE = DailyPattern(outage_every_days=60)


def day_number(wait: Arrival) -> int:
    """Return the wait's day on the time line (0: :data:`ORIGIN`'s day)."""
    return (wait.scheduled_at - ORIGIN) // timedelta(days=1)


def start_s(pattern: DailyPattern, day: int) -> float:
    """Return day ``day``'s sensor start, seconds after its scheduled time."""
    return pattern.drift_per_day_s * day


def mean_s(pattern: DailyPattern, day: int, weekday: int) -> float:
    """Return the mean arrival offset (late tail aside) of a day."""
    wednesday = pattern.weekly and weekday == WEDNESDAY
    return (
        start_s(pattern, day)
        + pattern.typical_s
        + (pattern.wednesday_delay_s if wednesday else 0.0)
    )


def lands_probability(pattern: DailyPattern, day: int, weekday: int) -> float:
    """Return the true probability that a day's data lands at all."""
    period = pattern.outage_every_days
    if period and day % period >= period - pattern.outage_days:
        return 0.0
    if pattern.weekly and weekday >= SATURDAY:
        return 1.0 - pattern.weekend_never
    return 1.0


def daily_like(pattern: DailyPattern, count: int, seed: int, first: int = 0) -> list[Arrival]:
    """Return days ``first .. first + count - 1`` of ``pattern`` (the class docstring)."""
    rng = random.Random(seed)
    return [_daily_wait(pattern, day, rng) for day in range(first, first + count)]


def _daily_wait(pattern: DailyPattern, day: int, rng: random.Random) -> Arrival:
    scheduled = ORIGIN + timedelta(days=day) + DAILY_AT
    weekday = scheduled.weekday()
    # Four draws a day whatever happens: day d's draws never depend on the days before.
    lands, late, noise = rng.random(), rng.random(), rng.gauss(0.0, 1.0)
    delay = rng.uniform(pattern.late_low_s, pattern.late_high_s)
    offset = mean_s(pattern, day, weekday) + pattern.sd_s * noise
    offset += delay if late < pattern.late_share else 0.0
    landed = max(offset, 0.0) if lands < lands_probability(pattern, day, weekday) else None
    return Arrival(scheduled, landed, pattern.timeout_s, start_s(pattern, day))


def daily_earliest(pattern: DailyPattern, wait: Arrival) -> float | None:
    """Return the wait's earliest possible arrival: mean - SD_RANGE sd; ``None``: cannot land."""
    day, weekday = day_number(wait), wait.scheduled_at.weekday()
    if lands_probability(pattern, day, weekday) == 0.0:
        return None
    return max(mean_s(pattern, day, weekday) - SD_RANGE * pattern.sd_s, 0.0)


def daily(count: int, seed: int, first: int = 0) -> list[Arrival]:
    """Return waits of a weekly pattern: Normal(2 h, 15 min), Wednesdays +30 min, weekends.

    One wait a day at 06:00 UTC, the sensor starting then (2 h before the typical arrival);
    5% of the landing waits land another 1-3 h late; timeout 6 h.
    """
    return daily_like(DAILY, count, seed, first)


def drift(count: int, seed: int, first: int = 0) -> list[Arrival]:
    """Return waits of a source 3 min later every day: Normal(2 h + 3 min x day, 15 min).

    The sensor starts 3 min x day after the scheduled time, 2 h before the typical arrival
    (a fixed start would see no arrival after 40 days); 5% land 1-3 h late; timeout 6 h.
    """
    return daily_like(DRIFT, count, seed, first)


def outage(count: int, seed: int, first: int = 0) -> list[Arrival]:
    """Return waits landing Normal(2 h, 15 min) daily, with a 4-day outage every 60 days.

    No weekly pattern; 5% land 1-3 h late; timeout 6 h; the days after an outage recover.
    """
    return daily_like(OUTAGE, count, seed, first)
