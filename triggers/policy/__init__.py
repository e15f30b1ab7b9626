"""Pure poll policies: no asyncio, no Airflow, no clock or global random inside.

A policy is a frozen value object that answers one question, how long to wait after
poke number ``n`` (:meth:`IntervalPolicy.next_interval`), from a :class:`PollState` and
a seeded ``random.Random``. :mod:`.schedule` turns a policy and a stable key into a
reproducible schedule and finds a restarted wait's place in it; :mod:`.serde` carries
policies through trigger kwargs as plain JSON.
"""

from __future__ import annotations

from .backoff import Capped, Constant, Exponential, Linear
from .compat import AIRFLOW_MAX_DELAY, AirflowExponential
from .errors import PolicyConfigError
from .jitter import DecorrelatedJitter, EqualJitter, FullJitter
from .protocol import JSON, MIN_INTERVAL, IntervalPolicy
from .schedule import (
    MAX_ELAPSED,
    MAX_REPLAY,
    interval_at,
    intervals,
    is_flat,
    resume,
    rng_for,
)
from .serde import POLICY_KINDS, policy_from_config
from .state import PollState

__all__ = [
    "AIRFLOW_MAX_DELAY",
    "JSON",
    "MAX_ELAPSED",
    "MAX_REPLAY",
    "MIN_INTERVAL",
    "POLICY_KINDS",
    "AirflowExponential",
    "Capped",
    "Constant",
    "DecorrelatedJitter",
    "EqualJitter",
    "Exponential",
    "FullJitter",
    "IntervalPolicy",
    "Linear",
    "PolicyConfigError",
    "PollState",
    "interval_at",
    "intervals",
    "is_flat",
    "policy_from_config",
    "resume",
    "rng_for",
]
