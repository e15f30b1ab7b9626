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
lowest hazard ``m_k / S_k``, taken in that order until their late mass reaches the budget.
This is Keller's result (check where the hazard is high) solved exactly for a latency
quantile instead of a linear cost of lateness.  A run of sparse cells ends at a poke (the
next dense cell's first, or the deadline's), so its last cell is detected in time: the late
mass of a plan is that of its sparse cells but the last of each run (:func:`_late`), and
the threshold is the highest hazard whose plan keeps it within the budget (by bisection:
the late mass only grows with the threshold).

One budget for a source, not one per wait.  The target is a quantile of the latency over
a source's waits, so the budget is spent where a poke saves the most over all of them
(:func:`shared_cutoff`): the cells of the source's mix of runs (weekdays and hours, in
their recent proportions) are pooled and one hazard threshold chosen for all.  A run that
mostly stays empty (a weekend) has a low hazard everywhere and polls sparsely, where a
budget of its own would have made it poll densely around its rare arrivals; a run whose
arrival is all but certain polls a little more densely instead.

The plan is the poke offsets that follow: from a dense cell, the next poke is ``dense``
later; from a sparse one, ``sparse`` later but never past the start of the next dense cell;
never past the deadline, where a last poke always happens (an arrival before the deadline
is never missed).  Past the history's horizon the model knows nothing of *when*: those
cells are sparse.  Pure and deterministic.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol

import numpy as np

from .turnbull import Floats

__all__ = ["MAX_CELLS", "Arrivals", "Plan", "plan", "shared_cutoff"]

MAX_CELLS: Final = 20_000
"""Dense cells a plan considers; past them (a long wait with a tiny target) all is sparse."""


class Arrivals(Protocol):
    """What a plan reads of an arrival distribution (:class:`.model.Distribution` has it)."""

    @property
    def horizon(self) -> float:
        """Return the latest offset the distribution says anything of *when* about."""
        ...

    def cdf(self, offset: float) -> float:
        """Return P(arrival <= ``offset``), never-arriving runs counted as never."""
        ...

    def cdf_many(self, offsets: Floats) -> Floats:
        """Return :meth:`cdf` at each offset."""
        ...


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
    dist: Arrivals,
    start: float,
    deadline: float,
    *,
    dense: float,
    sparse: float,
    budget: float,
    cutoff: float | None = None,
) -> Plan:
    """Return the poke plan of a window (module docstring).

    :param dist: the arrival distribution of the run.
    :param start: the offset of the window's first poke (it found nothing).
    :param deadline: the offset of the window's deadline, > ``start``.
    :param dense: the latency target: the interval where arrival is likely.
    :param sparse: the longest interval, >= ``dense``.
    :param budget: the fraction of expected arrivals that may be detected later than
        ``dense`` (``1 - q`` for a latency target at quantile ``q``, less a safety margin).
    :param cutoff: the hazard below which a cell is sparse, shared by a source's waits
        (:func:`shared_cutoff`); ``None``: this wait's own, from ``budget``.
    """
    if not deadline > start:
        return Plan((start,), 0.0, 1.0)
    cells = _cells(dist, start, deadline, dense)
    if cutoff is None:
        cutoff = _threshold([(1.0, cells)], budget)
    edges, mass = cells[0], cells[1]
    is_dense = _dense(cells, cutoff)
    offsets = _offsets(edges, is_dense, start, deadline, dense, sparse)
    late = _late(mass, is_dense) / float(mass.sum()) if mass.sum() > 0 else 0.0
    return Plan(offsets, late, _expected_pokes(offsets, dist, start))


def shared_cutoff(
    mix: Sequence[tuple[float, Arrivals]],
    start: float,
    deadline: float,
    *,
    dense: float,
    budget: float,
) -> float:
    """Return the hazard cutoff that spends ``budget`` over a mix of waits, not each apart.

    ``mix`` is ``(share, distribution)`` of the waits a source runs (:meth:`.ArrivalModel.mix`),
    each polled over ``(start, deadline]``.  Their cells are pooled, a cell's arrival mass
    and survival weighted by its wait's share, and :func:`_threshold` picks the one hazard
    below which cells are sparse so that at most ``budget`` of the arrivals the mix expects
    are detected late.  A run that mostly stays empty (its survival barely falls) then
    polls sparsely where a wait of its own would spend its budget densely, and the latency
    target holds at its quantile over the source's waits.
    """
    if not deadline > start or not mix:
        return float("inf")
    return _threshold([(share, _cells(d, start, deadline, dense)) for share, d in mix], budget)


Cells = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""A window's cells: edges, arrival masses, survival at their starts, which are known."""


def _cells(dist: Arrivals, start: float, deadline: float, dense: float) -> Cells:
    """Return the cells of ``(start, deadline]``, ``dense`` wide (the last may be shorter)."""
    count = min(int(np.ceil((deadline - start) / dense)), MAX_CELLS)
    edges = np.minimum(start + dense * np.arange(count + 1), deadline)
    cdf = dist.cdf_many(edges)
    mass = np.diff(cdf)  # arrival mass per cell
    alive = 1.0 - cdf[:-1]  # still waiting at the cell's start (never-arriving included)
    known = edges[1:] <= dist.horizon + dense
    return edges, mass, alive, known


def _dense(cells: Cells, cutoff: float) -> np.ndarray:
    """Return which cells are dense: known, with arrival mass, hazard at least ``cutoff``."""
    _, mass, alive, known = cells
    return np.asarray(known & (mass > 0) & (mass / np.maximum(alive, 1e-12) >= cutoff))


def _late(mass: np.ndarray, is_dense: np.ndarray) -> float:
    """Return the arrival mass a plan detects late: its sparse cells but the last of each run.

    A run of sparse cells ends at a dense cell's first poke or at the deadline's: an arrival
    in its last cell is seen within ``dense``.  (So is one in the last ``dense`` of each
    ``sparse`` gap inside a long run; not counted, which errs late.)
    """
    ends_run = np.append(is_dense[1:], True)
    return float(mass[~is_dense & ~ends_run].sum())


def _threshold(members: Sequence[tuple[float, Cells]], budget: float) -> float:
    """Return the highest hazard cutoff whose plans leave at most ``budget`` of arrivals late.

    Cells below the cutoff are sparse (:func:`_dense`); the late mass (:func:`_late`, each
    member's weighted by its share) only grows with the cutoff, so the cutoff is found by
    bisection over the cells' hazards: ``inf`` (all sparse) when even that fits.
    """
    total = sum(share * float(cells[1].sum()) for share, cells in members)
    allowed = budget * total

    def late(cutoff: float) -> float:
        return sum(share * _late(cells[1], _dense(cells, cutoff)) for share, cells in members)

    if late(float("inf")) <= allowed:
        return float("inf")
    hazards = np.unique(
        np.concatenate([(c[1] / np.maximum(c[2], 1e-12))[c[3] & (c[1] > 0)] for _, c in members])
    )
    low, high = 0, hazards.size  # late(hazards[low]) fits; late(hazards[high] or inf) does not
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if late(float(hazards[middle])) <= allowed else (low, middle)
    return float(hazards[low]) if hazards.size else float("inf")


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


def _expected_pokes(offsets: tuple[float, ...], dist: Arrivals, start: float) -> float:
    """Return E[pokes | nothing at ``start``]: one per planned poke reached while waiting."""
    alive = 1.0 - dist.cdf_many(np.asarray(offsets[:-1]))
    return 1.0 + float(np.sum(alive)) / max(1.0 - dist.cdf(start), 1e-12)
