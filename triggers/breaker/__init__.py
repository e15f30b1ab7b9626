"""The per-source circuit breaker.

- :mod:`.model`: states, the per-source :class:`BreakerConfig`, the persisted
  :class:`BreakerSnapshot` (pure value objects);
- :mod:`.events`: what a transition emits (pure);
- :mod:`.machine`: the transitions, ``decide`` / ``record`` / ``force`` (pure; time passed in);
- :mod:`.ledger`: the async service a wait talks to (store reads and writes, logs, metrics).
  Not re-exported here: it imports the store, which imports this package's model.
"""

from __future__ import annotations

from waitwise.triggers.errors import BreakerConfigError, BreakerSnapshotError

from .events import (
    BreakerClosed,
    BreakerEvent,
    BreakerForced,
    BreakerHalfOpened,
    BreakerOpened,
    BreakerProbeExpired,
    BreakerRejected,
    format_utc,
)
from .machine import Decision, Transition, Verdict, decide, force, record
from .model import SNAPSHOT_SCHEMA, BreakerConfig, BreakerSnapshot, BreakerState

__all__ = [
    "SNAPSHOT_SCHEMA",
    "BreakerClosed",
    "BreakerConfig",
    "BreakerConfigError",
    "BreakerEvent",
    "BreakerForced",
    "BreakerHalfOpened",
    "BreakerOpened",
    "BreakerProbeExpired",
    "BreakerRejected",
    "BreakerSnapshot",
    "BreakerSnapshotError",
    "BreakerState",
    "Decision",
    "Transition",
    "Verdict",
    "decide",
    "force",
    "format_utc",
    "record",
]
