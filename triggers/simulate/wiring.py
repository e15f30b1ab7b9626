"""What the example DAGs give their sensors: production settings, or the demo's compressed ones.

The example DAGs (``dags/waitwise_financial.py`` and its siblings) call
:func:`sensor_settings` with their source's name.  Normally that is the source's preset
profile and an adaptive poll policy at the tier's latency target.  When the environment says
``WAITWISE_DEMO_COMPRESSED=1`` (``make demo`` sets it for its own Airflow only; never set it
in production) every duration is divided by the source's compression factor
(:mod:`waitwise.triggers.simulate.demo`), the deadline is the scenario's (5 min, 45 min,
4 h 30), a passed deadline does not re-open the wait, the cold-start guard needs only a few
waits, a live wait's ``scheduled_at`` is when its run started, and the partner's breaker
opens after two failed waits and cools down for 20 s: explicitly, so that two compressed
weeks show learning, the breaker and an alert in a few minutes.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Final

from waitwise.triggers.adaptive import Adaptive
from waitwise.triggers.profiles import OnDeadline, ReliabilityProfile
from waitwise.triggers.simulate.demo import DEMO_SOURCES, DemoSource, scaled_policy, scaled_profile

__all__ = ["DEMO_ENV", "adaptive_for", "demo_mode", "profile_for", "sensor_settings", "source"]

DEMO_ENV: Final = "WAITWISE_DEMO_COMPRESSED"

TARGET_LATENCY_S: Final = {"financial": 30.0, "customer": 120.0, "partner": 600.0}
"""How late after arrival detection may be (p95), per source, in the source's own seconds."""
MAX_INTERVAL_S: Final = {"financial": 60.0, "customer": 300.0, "partner": 900.0}

DEMO_TRUST_FROM: Final = 5
"""The demo's cold-start guard: plan from the model once 5 waits were foreseen (default 300)."""
DEMO_BREAKER_THRESHOLD: Final = 2
DEMO_BREAKER_COOLDOWN_S: Final = 20.0
DEMO_SCHEDULED_AT: Final = "{{ dag_run.start_date | string }}"


def demo_mode() -> bool:
    """Return whether the compressed demo settings are asked for (``WAITWISE_DEMO_COMPRESSED``)."""
    return os.environ.get(DEMO_ENV) == "1"


def source(name: str) -> DemoSource:
    """Return the demo source called ``name``."""
    for candidate in DEMO_SOURCES:
        if candidate.name == name:
            return candidate
    raise KeyError(f"no demo source {name!r}: one of {[s.name for s in DEMO_SOURCES]}")


def profile_for(name: str, *, compressed: bool) -> ReliabilityProfile:
    """Return the source's profile: its preset, or the demo's compressed copy of it."""
    src = source(name)
    if not compressed:
        return src.profile
    profile = scaled_profile(src.profile, src.factor)
    retry = dataclasses.replace(profile.retry, on_deadline=OnDeadline.FAIL, max_reopens=0)
    breaker = profile.breaker
    if breaker is not None and name == "partner":
        breaker = dataclasses.replace(
            breaker,
            failure_threshold=DEMO_BREAKER_THRESHOLD,
            failure_rate=None,
            cooldown_s=DEMO_BREAKER_COOLDOWN_S,
        )
    timeout_s = src.scenario.timeout_s / src.factor  # the scenario's deadline, not the preset's
    return profile.override(retry=retry, breaker=breaker, timeout_s=timeout_s)


def adaptive_for(name: str, *, compressed: bool) -> Adaptive:
    """Return the source's adaptive poll policy (the profile's poll policy as its fallback)."""
    src = source(name)
    factor = src.factor if compressed else 1.0
    policy = Adaptive(
        target_latency_s=TARGET_LATENCY_S[name],
        max_interval_s=MAX_INTERVAL_S[name],
        fallback=src.profile.poll,
        min_history=5,
    )
    if compressed:
        policy = scaled_policy(policy, factor)  # type: ignore[assignment]
        policy = dataclasses.replace(policy, trust_from=DEMO_TRUST_FROM)
    return policy


def sensor_settings(name: str) -> dict[str, Any]:
    """Return the keyword arguments of ``name``'s sensor in the example DAGs."""
    compressed = demo_mode()
    settings: dict[str, Any] = {
        "source": name,
        "profile": profile_for(name, compressed=compressed),
        "poll": adaptive_for(name, compressed=compressed),
        "soft_fail": name == "partner",  # 80% reliable: a late partner file is no failure
    }
    if compressed:
        settings["scheduled_at"] = DEMO_SCHEDULED_AT
    return settings
