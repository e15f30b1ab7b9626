"""The adaptive planner given the truth: the bench's bound on what learning can reach.

The ``planned, true model`` row of the policy bench polls every wait by the very planner
the adaptive policy uses (:func:`waitwise.triggers.adaptive.planner.plan`, with the budget
spread over the source's mix by :func:`~waitwise.triggers.adaptive.planner.shared_cutoff`)
and the same lateness budget (``SAFETY x (1 - quantile)``), but with the scenario's *true*
arrival distributions in place of a model learned from the history.  The gap between it
and ``adaptive warm`` is what the learned model's errors cost; the gap between it and the
goals is what the planner itself can reach.

The truths, from the generators' parameters (:mod:`waitwise.triggers.simulate.scenarios`):

- a daily pattern's day: with probability ``lands``, ``Normal(mean, sd)``, of which
  ``late_share`` another ``Uniform(late_low, late_high)`` later (that convolution is
  integrated over :data:`LATE_NODES` points of the uniform);
- a uniform source: with probability ``1 - never``, ``Uniform(low, high)``.

The mix of a daily wait is its previous :data:`MIX_DAYS` days and itself, each as it would
be on the wait's day (the same weekday's mean, that day's chance of landing), as the learned
model's mix is (:meth:`~waitwise.triggers.adaptive.model.ArrivalModel.mix`).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

import numpy as np

from waitwise.triggers.adaptive import Arrival
from waitwise.triggers.adaptive.model import MIX_RUNS
from waitwise.triggers.adaptive.planner import plan, shared_cutoff
from waitwise.triggers.adaptive.policy import SAFETY
from waitwise.triggers.adaptive.smoothing import normal_cdf
from waitwise.triggers.simulate.scenarios import (
    DailyPattern,
    UniformSource,
    day_number,
    lands_probability,
    mean_s,
)

__all__ = ["LATE_NODES", "MIX_DAYS", "Truth", "daily_truths", "planned_pokes", "uniform_truths"]

LATE_NODES: Final = 201
"""Points of the late delay's uniform the late part's CDF is averaged over."""
MIX_DAYS: Final = MIX_RUNS
"""Previous days in a daily wait's mix: the learned model's (one run a day)."""

Floats = np.ndarray


@dataclass(frozen=True, slots=True)
class Truth:
    """A true arrival distribution, with what :func:`plan` reads of a distribution.

    With probability ``lands``: ``Uniform(low_s, high_s)`` when ``sd_s == 0``, else
    ``Normal(mean_s, sd_s)``, of which ``late_share`` another ``Uniform(late_low_s,
    late_high_s)`` later.  ``horizon`` is the wait's deadline offset.
    """

    lands: float
    mean_s: float
    sd_s: float
    horizon: float
    low_s: float = 0.0
    high_s: float = 0.0
    late_share: float = 0.0
    late_low_s: float = 0.0
    late_high_s: float = 0.0

    def cdf_many(self, offsets: Floats) -> Floats:
        """Return P(arrival <= offset) at each offset."""
        x = np.asarray(offsets, dtype=np.float64)
        if self.sd_s <= 0.0:
            span = max(self.high_s - self.low_s, 1e-9)
            return np.asarray(self.lands * np.clip((x - self.low_s) / span, 0.0, 1.0))
        on_time = normal_cdf((x - self.mean_s) / self.sd_s)
        if self.late_share <= 0.0:
            return np.asarray(self.lands * on_time)
        delays = np.linspace(self.late_low_s, self.late_high_s, LATE_NODES)
        late = normal_cdf((x[:, None] - self.mean_s - delays[None, :]) / self.sd_s).mean(axis=1)
        return np.asarray(self.lands * ((1.0 - self.late_share) * on_time + self.late_share * late))

    def cdf(self, offset: float) -> float:
        """Return P(arrival <= ``offset``)."""
        return float(self.cdf_many(np.asarray([offset]))[0])


def daily_truth(pattern: DailyPattern, wait: Arrival, day: int | None = None) -> Truth:
    """Return day ``day``'s truth as it would be on ``wait``'s day (``None``: ``wait``'s own)."""
    today = day_number(wait)
    day = today if day is None else day
    weekday = (wait.scheduled_at - timedelta(days=today - day)).weekday()
    return Truth(
        lands=lands_probability(pattern, day, weekday),
        mean_s=mean_s(pattern, today, weekday),
        sd_s=pattern.sd_s,
        horizon=wait.deadline_s,
        late_share=pattern.late_share,
        late_low_s=pattern.late_low_s,
        late_high_s=pattern.late_high_s,
    )


Mix = list[tuple[float, Truth]]
"""``(share, truth)`` of the runs a wait's latency budget is spread over."""


def daily_truths(pattern: DailyPattern, wait: Arrival) -> tuple[Truth, Mix]:
    """Return the wait's truth and mix: its previous :data:`MIX_DAYS` days and itself."""
    today = day_number(wait)
    days = Counter(daily_truth(pattern, wait, d) for d in range(today - MIX_DAYS, today + 1))
    total = sum(days.values())
    return daily_truth(pattern, wait), [(n / total, truth) for truth, n in days.items()]


def uniform_truths(source: UniformSource, wait: Arrival) -> tuple[Truth, Mix]:
    """Return a uniform source's truth, the whole of its mix."""
    truth = Truth(
        lands=1.0 - source.never,
        mean_s=0.0,
        sd_s=0.0,
        horizon=wait.deadline_s,
        low_s=source.low_s,
        high_s=source.high_s,
    )
    return truth, [(1.0, truth)]


def planned_pokes(
    waits: Sequence[Arrival],
    truths: Callable[[Arrival], tuple[Truth, Mix]],
    *,
    target_s: float,
    max_interval_s: float,
    quantile: float = 0.95,
) -> tuple[list[int], list[float | None], float]:
    """Return pokes and latencies (``None``: not detected) per wait, and the wall time.

    Each wait pokes at its plan's offsets (the start first, the deadline last) until one
    reaches its arrival: the adaptive policy's budget and planner, the true distributions.
    """
    started = time.perf_counter()
    budget = SAFETY * (1.0 - quantile)
    pokes: list[int] = []
    latencies: list[float | None] = []
    for wait in waits:
        start, deadline = wait.started_after_s, wait.deadline_s
        truth, mix = truths(wait)
        cutoff = shared_cutoff(mix, start, deadline, dense=target_s, budget=budget)
        offsets = plan(
            truth,
            start,
            deadline,
            dense=target_s,
            sparse=max_interval_s,
            budget=budget,
            cutoff=cutoff,
        ).offsets
        arrival = wait.arrived_after_s
        reached = (i for i, t in enumerate(offsets) if arrival is not None and t >= arrival)
        seen = next(reached, None)
        pokes.append(len(offsets) if seen is None else seen + 1)
        latencies.append(None if seen is None or arrival is None else offsets[seen] - arrival)
    return pokes, latencies, time.perf_counter() - started
