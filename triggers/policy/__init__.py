"""Pure poll policies: no asyncio, no Airflow, no clock or global random inside.

A policy is a frozen value object that answers one question, how long to wait after
poke number ``n`` (:meth:`IntervalPolicy.next_interval`), from a :class:`PollState` and
a seeded ``random.Random``. :mod:`.schedule` turns a policy and a stable key into a
reproducible schedule and finds a restarted wait's place in it (:class:`Schedule`);
:mod:`.windows` lays out a wait's deadlines and re-opened windows; :mod:`.durations`
checks durations at the boundary; :mod:`.serde` carries policies through trigger kwargs
as plain JSON.  Everything in this package is time arithmetic: no I/O.
"""

from __future__ import annotations

from .backoff import Capped, Constant, Exponential, Linear
from .compat import AIRFLOW_MAX_DELAY, AirflowExponential
from .durations import MAX_SECONDS, optional_seconds, positive_seconds
from .errors import PolicyConfigError
from .jitter import DecorrelatedJitter, EqualJitter, FullJitter
from .protocol import JSON, MIN_INTERVAL, IntervalPolicy
from .schedule import (
    MAX_ELAPSED,
    MAX_REPLAY,
    Schedule,
    interval_at,
    intervals,
    is_flat,
    resume,
    rng_for,
)
from .serde import ENTRY_POINT_GROUP, POLICY_KINDS, policy_from_config, policy_kinds, rebuildable
from .state import PollState
from .windows import Window, current, plan, span_bound

__all__ = [
    "AIRFLOW_MAX_DELAY",
    "ENTRY_POINT_GROUP",
    "JSON",
    "MAX_ELAPSED",
    "MAX_REPLAY",
    "MAX_SECONDS",
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
    "Schedule",
    "Window",
    "current",
    "interval_at",
    "intervals",
    "is_flat",
    "optional_seconds",
    "plan",
    "policy_from_config",
    "policy_kinds",
    "positive_seconds",
    "rebuildable",
    "resume",
    "rng_for",
    "span_bound",
]
