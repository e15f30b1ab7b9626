"""Airflow's own sensor backoff, for users moving from ``exponential_backoff=True``."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import ClassVar, Final

from ._base import (
    PolicyBase,
    check_number,
    check_seconds,
    steps,
)
from .state import PollState

__all__ = ["AIRFLOW_MAX_DELAY", "AirflowExponential"]

AIRFLOW_MAX_DELAY: Final = 86_399_999_999_999.0
"""Airflow's ceiling on a backoff delay: ``timedelta.max.total_seconds() - 1``."""


@dataclass(frozen=True, slots=True)
class AirflowExponential(PolicyBase):
    """Back off exactly as an Airflow sensor with ``exponential_backoff=True`` does.

    Formula, for the wait after poke number ``attempt`` (Airflow's ``poke_count``, 1 for
    the first poke, as in ``BaseSensorOperator._get_next_poke_interval`` in
    ``airflow/sdk/bases/sensor.py``)::

        b = max(int(poke_interval * 2 ** (attempt - 2)), 1)
        interval = min(b + jitter, max_wait)     # jitter is an integer in [0, b)

    so ``poke_interval=5`` waits in ``[2, 4)``, ``[5, 10)``, ``[10, 20)``, ... Airflow
    draws the jitter from a sha1 hash of ``dag_id#task_id#started_at#attempt`` modulo
    ``b``; here it is ``rng.randrange(b)``, drawn from the schedule's seeded rng, so the
    intervals match Airflow's in distribution, not value by value. Airflow's clamp to
    the remaining ``timeout`` is the poll loop's job, not the policy's. Use it to keep a
    migrated sensor's familiar cadence; for new sensors prefer :class:`Exponential`
    wrapped in a jitter, whose growth and cap are explicit.

    :param poke_interval: Airflow's ``poke_interval`` in seconds, >= 0.
    :param max_wait: Airflow's ``max_wait`` in seconds (>= ``MIN_INTERVAL``), or
        ``None`` for no cap beyond Airflow's own ceiling. Airflow ignores
        ``max_wait=0``; here it is rejected, so pass ``None`` for no cap.
    """

    kind: ClassVar[str] = "airflow_exponential"
    poke_interval: float
    max_wait: float | None = None

    def __post_init__(self) -> None:
        check_number(self, "poke_interval", 0)
        if self.max_wait is not None:
            check_seconds(self, "max_wait")

    @property
    def max_interval(self) -> float:
        """Return ``max_wait``, or Airflow's ceiling when there is none."""
        if self.max_wait is None:
            return AIRFLOW_MAX_DELAY
        return min(self.max_wait, AIRFLOW_MAX_DELAY)

    @property
    def monotone(self) -> bool:
        """Return ``True``: the next base, ``2b``, exceeds any wait drawn from ``b``."""
        return True

    def min_backoff(self, attempt: int) -> int:
        """Return Airflow's ``min_backoff`` after poke ``attempt``: the base ``b``.

        :param attempt: Airflow's ``poke_count``, 1 for the first poke.
        :raises OverflowError: when the base does not fit a float.
        """
        # ldexp is exactly Airflow's `poke_interval * 2 ** (attempt - 2)`, and keeps
        # `poke_interval=0` at 0 for any attempt instead of overflowing.
        return max(int(math.ldexp(self.poke_interval, steps(attempt) - 1)), 1)

    def next_interval(self, state: PollState, rng: random.Random) -> float:
        """Return ``min(b + rng.randrange(b), max_wait)``; see the class docstring."""
        try:
            base = self.min_backoff(state.attempt)
        except OverflowError:
            return self.max_interval
        if base >= self.max_interval:
            return self.max_interval
        return min(float(base + rng.randrange(base)), self.max_interval)
