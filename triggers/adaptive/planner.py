"""Where to poke: densely where arrival is likely, sparsely elsewhere, within a latency target.

The problem.  A wait starts at offset ``start`` (seconds after the scheduled time; the poke
there found nothing) and ends at ``deadline``.  Detection latency is the time from arrival
to the poke that sees it.  The target: latency <= ``dense`` for all but a fraction
``budget`` of the arrivals the model expects before the deadline, with as few pokes as
possible.

The solution.  Cut ``(start, deadline]`` into cells of width ``dense``.  Polling a cell
densely (a poke at each end) bounds its arrivals' latency by ``dense`` and costs one poke
for every wait still waiting there: ``S_k``, the probability of no arrival before the cell
(never-arriving waits included).  Polling it sparsely (every ``sparse`` seconds) saves
about ``S_k * (1 - dense / sparse)`` pokes and lets its arrival mass ``m_k`` be late.  Over
a continuum of interval choices the Lagrangian of "expected pokes + lambda x late mass" is
linear in ``1 / interval``, so each cell's optimum is at an end (dense or sparse), and the
best cells to leave sparse are those with the least arrival mass per poke saved: the
lowest hazard ``m_k / S_k``, taken in that order until their mass reaches the budget.
This is Keller's result (check where the hazard is high) solved exactly for a latency
quantile instead of a linear cost of lateness.

The plan is the poke offsets that follow: from a dense cell, the next poke is ``dense``
later; from a sparse one, ``sparse`` later but never past the start of the next dense cell;
never past the deadline, where a last poke always happens (an arrival before the deadline
is never missed).  Past the history's horizon the model knows nothing of *when*: those
cells are sparse.  Pure and deterministic.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Final

import numpy as np

from .model import Distribution

__all__ = ["MAX_CELLS", "Plan", "plan"]

MAX_CELLS: Final = 20_000
"""Dense cells a plan considers; past them (a long wait with a tiny target) all is sparse."""


@dataclass(frozen=True, slots=True)
class Plan:
    """The poke offsets of one window, seconds after the scheduled time, ascending.

    ``offsets[0]`` is the window's first poke (``start``); the last is the deadline.
    ``late_mass`` is the arrival mass (of what is expected before the deadline) left to
    sparse cells; ``expected_pokes`` the model's expected number of pokes.
    """

    offsets: tuple[float, ...]
    late_mass: float
    expected_pokes: float

    def next_after(self, offset: float) -> float | None:
        """Return the first planned poke after ``offset``, or ``None`` past the last."""
        i = bisect.bisect_right(self.offsets, offset + 1e-9)
        return self.offsets[i] if i < len(self.offsets) else None


def plan(
    dist: Distribution,
    start: float,
    deadline: float,
    *,
    dense: float,
    sparse: float,
    budget: float,
) -> Plan:
    """Return the poke plan of a window (module docstring).

    :param dist: the arrival distribution of the run.
    :param start: the offset of the window's first poke (it found nothing).
    :param deadline: the offset of the window's deadline, > ``start``.
    :param dense: the latency target: the interval where arrival is likely.
    :param sparse: the longest interval, >= ``dense``.
    :param budget: the fraction of expected arrivals that may be detected later than
        ``dense`` (``1 - q`` for a latency target at quantile ``q``, less a safety margin).
    """
    if not deadline > start:
        return Plan((start,), 0.0, 1.0)
    edges, mass, alive, known = _cells(dist, start, deadline, dense)
    cutoff = _threshold(mass, alive, known, budget)
    is_dense = known & (mass > 0) & (mass / np.maximum(alive, 1e-12) >= cutoff)
    offsets = _offsets(edges, is_dense, start, deadline, dense, sparse)
    late = float(mass[~is_dense].sum() / mass.sum()) if mass.sum() > 0 else 0.0
    return Plan(offsets, late, _expected_pokes(offsets, dist, start))


def _cells(
    dist: Distribution, start: float, deadline: float, dense: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return the cells' edges, arrival masses, survival at their starts, and which are known."""
    cells = min(int(np.ceil((deadline - start) / dense)), MAX_CELLS)
    edges = np.minimum(start + dense * np.arange(cells + 1), deadline)
    cdf = dist.cdf_many(edges)
    mass = np.diff(cdf)  # arrival mass per cell
    alive = 1.0 - cdf[:-1]  # still waiting at the cell's start (never-arriving included)
    known = edges[1:] <= dist.horizon + dense
    return edges, mass, alive, known


def _threshold(mass: np.ndarray, alive: np.ndarray, known: np.ndarray, budget: float) -> float:
    """Return the hazard below which a cell is polled sparsely, spending at most ``budget``.

    Cells are left sparse lowest hazard (``mass / alive``) first while their mass stays
    within ``budget`` of the whole; the threshold is the hazard of the first cell kept dense
    (``inf`` when every cell fits in the budget).
    """
    candidates = np.flatnonzero(known & (mass > 0))
    hazard = mass[candidates] / np.maximum(alive[candidates], 1e-12)
    order = np.argsort(hazard, kind="stable")
    spent = np.cumsum(mass[candidates][order])
    kept = np.flatnonzero(spent > budget * float(mass.sum()))
    return float(hazard[order][kept[0]]) if kept.size else float("inf")


def _offsets(
    edges: np.ndarray,
    is_dense: np.ndarray,
    start: float,
    deadline: float,
    dense: float,
    sparse: float,
) -> tuple[float, ...]:
    """Walk the cells: dense steps in dense cells, sparse ones up to the next dense cell."""
    dense_starts = edges[:-1][is_dense].tolist()
    offsets = [start]
    t = start
    while t < deadline:
        k = min(int((t - start) // dense), is_dense.size - 1) if is_dense.size else 0
        if is_dense.size and is_dense[k] and t < edges[k + 1]:
            step = t + dense
        else:
            i = bisect.bisect_right(dense_starts, t + 1e-9)
            following = dense_starts[i] if i < len(dense_starts) else deadline
            step = min(t + sparse, following)
        t = min(max(step, t + 1e-3), deadline)
        offsets.append(float(t))
    return tuple(offsets)


def _expected_pokes(offsets: tuple[float, ...], dist: Distribution, start: float) -> float:
    """Return E[pokes | nothing at ``start``]: one per planned poke reached while waiting."""
    alive = 1.0 - dist.cdf_many(np.asarray(offsets[:-1]))
    return 1.0 + float(np.sum(alive)) / max(1.0 - dist.cdf(start), 1e-12)
