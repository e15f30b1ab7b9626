"""The demo's scenario: the exercise's three sources over compressed days (pure).

Time.  Each source runs at its own compression factor (simulated seconds per real second):
one factor cannot serve a 5-minute and a 4-hour tier at once.  A source's waits, timeouts,
poll intervals, backoffs and breaker cooldown are all divided by its factor
(:func:`scaled_profile`, :func:`scaled_policy`), explicitly, for the demo only.

Calendar.  The demo covers ``days`` simulated days numbered ``0 .. days - 1``; day ``d`` is
the calendar day ``days - 1 - d`` days before the demo's own day (the last simulated day is
today), and its runs' logical date is that day at the demo's time of day, so file names
(``{{ ds_nodash }}``) and the history's weekdays follow the simulated calendar.  The first
days come from a replay (records written as the trigger writes them, their ``scheduled_at``
on their own calendar day); the last days run live in a real Airflow, minutes apart, each
wait's ``scheduled_at`` being the moment its run started (compressed time cannot put a live
wait on another calendar day).  Offsets within a day are real seconds after the wait starts:
the scenario's simulated offsets divided by the source's factor.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from waitwise.triggers.breaker import BreakerConfig
from waitwise.triggers.policy import MIN_INTERVAL, IntervalPolicy
from waitwise.triggers.profiles import HIGH, LOW, MEDIUM, AlertThresholds, ReliabilityProfile
from waitwise.triggers.simulate.scenarios import (
    CUSTOMER,
    FINANCIAL,
    PARTNER,
    UniformSource,
    uniform,
)

__all__ = [
    "DEMO_SOURCES",
    "DemoSource",
    "Landing",
    "plan_days",
    "scaled_policy",
    "scaled_profile",
]

_SECONDS_FIELDS: Final = frozenset(
    {
        "initial",
        "increment",
        "cap",
        "base",
        "interval",
        "target_latency_s",
        "max_interval_s",
        "min_timeout_s",
        "tune_every_s",
    }
)
"""Policy fields that hold durations (seconds): scaled; every other field is kept."""


@dataclass(frozen=True, slots=True)
class DemoSource:
    """One of the demo's sources.

    :param name: the source's name (history, breaker, metrics).
    :param scenario: its arrivals (the exercise's uniform windows).
    :param profile: its reliability profile, unscaled.
    :param factor: simulated seconds per real second.
    :param path: the file's path relative to the data root, ``{ds_nodash}`` filled in.
    """

    name: str
    scenario: UniformSource
    profile: ReliabilityProfile
    factor: float
    path: str

    def relpath(self, ds_nodash: str) -> str:
        """Return the file's path for the run of ``ds_nodash``."""
        return self.path.format(ds_nodash=ds_nodash)


DEMO_SOURCES: Final = (
    DemoSource("financial", FINANCIAL, HIGH, 5.0, "financial/financial_{ds_nodash}.csv"),
    DemoSource("customer", CUSTOMER, MEDIUM, 60.0, "customer/customer_{ds_nodash}.json"),
    DemoSource("partner", PARTNER, LOW, 540.0, "partner/partner_{ds_nodash}.xml"),
)


@dataclass(frozen=True, slots=True)
class Landing:
    """When one day's file of one source lands.

    :param offset_s: real seconds after the wait starts; ``None``: it never lands.
    :param simulated_s: the same in simulated seconds (the scenario's own offset).
    """

    source: str
    day: int
    offset_s: float | None
    simulated_s: float | None


def plan_days(
    days: int,
    seed: int,
    outages: Mapping[str, Collection[int]] | None = None,
    sources: tuple[DemoSource, ...] = DEMO_SOURCES,
) -> list[Landing]:
    """Return every source's landing on days ``0 .. days - 1`` (deterministic for ``seed``).

    A source's day in ``outages[source]`` never lands (an outage), whatever the draw said.
    """
    outages = outages or {}
    landings = []
    for source in sources:
        own_seed = seed ^ zlib.crc32(source.name.encode())
        waits = uniform(source.scenario, days, own_seed, every=timedelta(days=1))
        for day, wait in enumerate(waits):
            simulated = None if day in outages.get(source.name, ()) else wait.arrived_after_s
            offset = None if simulated is None else simulated / source.factor
            landings.append(Landing(source.name, day, offset, simulated))
    return landings


def scaled_policy(policy: IntervalPolicy, factor: float) -> IntervalPolicy:
    """Return ``policy`` with every duration divided by ``factor`` (wrapped policies too).

    A positive duration never drops below the policies' floor, ``MIN_INTERVAL``.
    """
    if not dataclasses.is_dataclass(policy):
        raise TypeError(f"cannot scale {policy!r}: not a dataclass policy")
    changes: dict[str, Any] = {}
    for field in dataclasses.fields(policy):
        value = getattr(policy, field.name)
        if field.name in _SECONDS_FIELDS and isinstance(value, int | float) and value is not None:
            changes[field.name] = max(value / factor, MIN_INTERVAL) if value > 0 else value
        elif dataclasses.is_dataclass(value) and hasattr(value, "next_interval"):
            changes[field.name] = scaled_policy(value, factor)
    return dataclasses.replace(policy, **changes)


def scaled_profile(profile: ReliabilityProfile, factor: float) -> ReliabilityProfile:
    """Return ``profile`` with its durations divided by ``factor`` (same name and tier).

    For the demo only: production profiles are never scaled.
    """
    retry = profile.retry
    retry = dataclasses.replace(
        retry,
        probe_backoff=scaled_policy(retry.probe_backoff, factor),
        reopen_backoff=scaled_policy(retry.reopen_backoff, factor),
    )
    breaker: BreakerConfig | None = profile.breaker
    if breaker is not None:
        probe = breaker.probe_timeout_s
        breaker = dataclasses.replace(
            breaker,
            cooldown_s=breaker.cooldown_s / factor,
            probe_timeout_s=None if probe is None else probe / factor,
        )
    alerts: AlertThresholds = profile.alerts
    if alerts.max_wait_s is not None:
        alerts = dataclasses.replace(alerts, max_wait_s=alerts.max_wait_s / factor)
    return profile.override(
        arrival_window_s=profile.arrival_window_s / factor,
        timeout_s=profile.timeout_s / factor,
        poll=scaled_policy(profile.poll, factor),
        retry=retry,
        breaker=breaker,
        alerts=alerts,
    )
