"""Learning from a source's wait history: arrival model, adaptive polling, ETA, replay.

Pure: numpy and the stdlib, no clock, no I/O.  The engine feeds it a source's history
records (:class:`Knowledge`); :func:`replay` runs the same binding and scheduling code
without Airflow.

- :mod:`.observations`: records -> censored arrival intervals.
- :mod:`.turnbull`: the nonparametric estimate of an interval-censored distribution.
- :mod:`.model`: recency weights, drift, change of pattern, weekday and hour groups.
- :mod:`.smoothing`: the estimates' kernel, wider where arrivals are rare.
- :mod:`.planner`: the poke plan that meets a latency target with the fewest pokes.
- :mod:`.policy`: :class:`Adaptive` and :class:`RecentAverage`, configurable like any policy.
- :mod:`.replay`: :func:`replay`, :class:`Arrival`.
- :mod:`.health`: :func:`health`, a source's score 0-100 (the formula is there).
- :mod:`.tuning`: auto-tuning's rules and change log (:class:`Change`, :class:`Setting`).
"""

from __future__ import annotations

from .health import Health, health
from .knowledge import Knowledge
from .model import ArrivalModel, Distribution, Learning, fit
from .observations import Observation, from_records, observe
from .planner import Plan, plan
from .policy import Adaptive, Bound, Eta, Planned, RecentAverage
from .replay import Arrival, Replayed, named_policy, replay
from .tuning import Change, Setting

__all__ = [
    "Adaptive",
    "Arrival",
    "ArrivalModel",
    "Bound",
    "Change",
    "Distribution",
    "Eta",
    "Health",
    "Knowledge",
    "Learning",
    "Observation",
    "Plan",
    "Planned",
    "RecentAverage",
    "Replayed",
    "Setting",
    "fit",
    "from_records",
    "health",
    "named_policy",
    "observe",
    "plan",
    "replay",
]
