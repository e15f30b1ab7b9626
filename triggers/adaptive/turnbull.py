"""Turnbull's estimator: the arrival distribution from interval-censored observations.

Cells.  The offsets ``[0, horizon]`` are cut at the observations' endpoints (at most
:data:`MAX_CELLS` of them, chosen by weighted quantile when there are more), giving cells
``(e_j, e_j+1]``, plus one last cell ``(horizon, inf)``: *late or never*, the mass of
right-censored waits that no observation bounds.  Observation ``i``, ``(L_i, R_i]`` with
weight ``w_i``, covers the cells ``a_i..b_i`` it overlaps.

Self-consistency (Turnbull 1976, an EM)::

    p_j  <-  p_j * sum_{i covers j} w_i / P_i  /  sum_i w_i,     P_i = sum_{k=a_i..b_i} p_k

starting from equal masses, until no mass moves by more than :data:`TOLERANCE` (or
:data:`MAX_ROUNDS`).  It converges to the nonparametric maximum-likelihood estimate:
masses >= 0 summing to 1, so the CDF it defines is monotone.  With the endpoints as
edges the estimate is exact; with quantile edges it is the estimate on a coarser grid.
Observations with equal cells are merged first, so a round costs ``O(pairs + cells)``.
Within a cell the mass is spread evenly (the CDF is linear between edges): the
likelihood does not say where in the cell the arrivals lie.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

__all__ = ["MAX_CELLS", "Estimate", "estimate"]

MAX_CELLS: Final = 400
TOLERANCE: Final = 1e-7
MAX_ROUNDS: Final = 1_000

Floats = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Estimate:
    """An arrival distribution on cells: ``masses[j]`` on ``(edges[j], edges[j+1]]``.

    ``masses`` has one more entry than there are finite cells: the last is the mass past
    ``edges[-1]`` (late or never).  ``weight`` is the observations' total weight.
    """

    edges: Floats
    masses: Floats
    weight: float

    @property
    def horizon(self) -> float:
        """Return the last finite edge: past it the estimate knows nothing of *when*."""
        return float(self.edges[-1])

    @property
    def beyond(self) -> float:
        """Return the mass past the horizon (arrives late or never)."""
        return float(self.masses[-1])

    def cdf(self, offset: float) -> float:
        """Return P(arrival <= ``offset``), linear within a cell, flat past the horizon."""
        edges, cum = self.edges, self._cumulative
        if offset <= edges[0]:
            return 0.0
        if offset >= edges[-1]:
            return float(cum[-1])
        j = int(np.searchsorted(edges, offset, side="right")) - 1
        share = (offset - edges[j]) / (edges[j + 1] - edges[j])
        return float(cum[j] + share * (cum[j + 1] - cum[j]))

    def cdf_many(self, offsets: Floats) -> Floats:
        """Return :meth:`cdf` at each of ``offsets``."""
        return np.interp(offsets, self.edges, self._cumulative)

    def quantile(self, q: float) -> float | None:
        """Return the smallest offset with ``cdf >= q``, or ``None`` past the horizon."""
        cum = self._cumulative
        if q > cum[-1] + 1e-12:
            return None
        j = int(np.searchsorted(cum, q, side="left"))
        if j == 0:
            return float(self.edges[0])
        low, high = cum[j - 1], cum[j]
        share = 0.0 if high <= low else (q - low) / (high - low)
        return float(self.edges[j - 1] + share * (self.edges[j] - self.edges[j - 1]))

    @property
    def _cumulative(self) -> Floats:
        """Return the CDF at each edge (``0`` at the first)."""
        return np.concatenate(([0.0], np.cumsum(self.masses[:-1])))


def _edges(after: Floats, by: Floats, weights: Floats) -> Floats:
    """Return the cell edges: every endpoint, or :data:`MAX_CELLS` weighted quantiles."""
    ends = np.concatenate((after, by[np.isfinite(by)]))
    ends_w = np.concatenate((weights, weights[np.isfinite(by)]))
    unique = np.unique(ends)
    if unique.size <= MAX_CELLS:
        edges = unique
    else:
        order = np.argsort(ends, kind="stable")
        cum = np.cumsum(ends_w[order])
        picks = np.searchsorted(cum, np.linspace(0.0, cum[-1], MAX_CELLS + 1)[1:-1])
        edges = np.unique(np.concatenate((ends[order][picks], unique[[0, -1]])))
    if edges[0] > 0.0:
        edges = np.concatenate(([0.0], edges))
    if edges.size == 1:
        edges = np.concatenate((edges, edges + 1.0))
    return edges


def estimate(
    after: Sequence[float] | Floats, by: Sequence[float] | Floats, weights: Sequence[float] | Floats
) -> Estimate:
    """Return the Turnbull estimate of observations ``(after[i], by[i]]`` weighted ``weights``.

    :param after: lower ends (exclusive), >= 0.
    :param by: upper ends (inclusive), >= ``after``; ``inf`` for right-censored.
    :param weights: > 0 each.
    :raises ValueError: when empty, of unequal lengths, or a weight is not > 0.
    """
    lo, hi, w = (np.asarray(x, dtype=np.float64) for x in (after, by, weights))
    if lo.size == 0 or not lo.size == hi.size == w.size:
        raise ValueError(
            f"need equal, non-empty after/by/weights, got {lo.size}/{hi.size}/{w.size}"
        )
    if not np.all(w > 0):
        raise ValueError("every weight must be > 0")
    edges = _edges(lo, hi, w)
    cells = edges.size  # finite cells edges.size - 1, plus the one past the horizon
    # Observation i covers cells first..last: the first whose upper edge is past L_i, the
    # first whose upper edge reaches R_i (a zero-width interval: that one cell).
    last = np.where(np.isfinite(hi), np.searchsorted(edges[1:], hi, side="left"), cells - 1)
    last = np.minimum(last, cells - 1)
    first = np.minimum(np.searchsorted(edges[1:], lo, side="right"), last)
    # One integer per (first, last) pair, in the same order: a 1-D unique is much faster.
    pairs, where = np.unique(first * cells + last, return_inverse=True)
    pair_w = np.bincount(where.reshape(-1), weights=w, minlength=len(pairs)).astype(np.float64)
    total = float(pair_w.sum())
    return Estimate(edges, _self_consistent(pairs // cells, pairs % cells, pair_w, cells), total)


def _self_consistent(
    first: NDArray[np.intp], last: NDArray[np.intp], w: Floats, cells: int
) -> Floats:
    """Run the self-consistency rounds (module docstring) to convergence, accelerated.

    Plain EM creeps (thousands of rounds on a few hundred cells); SQUAREM (Varadhan and
    Roland 2008) extrapolates along two EM steps, ``p0 - 2 a r + a^2 v`` with ``r = p1 - p0``,
    ``v = p2 - 2 p1 + p0``, ``a = -|r| / |v|`` (at most -1), projects onto the simplex and
    takes one EM step from there; it converges to the same fixed point in a tenth of the
    rounds.  When the extrapolation leaves the simplex badly, it falls back to ``p2``.
    """
    covered = np.zeros(cells + 1)
    np.add.at(covered, first, 1.0)
    np.add.at(covered, last + 1, -1.0)
    p = np.where(np.cumsum(covered)[:cells] > 0, 1.0, 0.0)
    p /= p.sum()
    total = w.sum()

    def step(q: Floats) -> Floats:
        cum = np.concatenate(([0.0], np.cumsum(q)))
        share = w / np.maximum(cum[last + 1] - cum[first], 1e-300)
        flow = np.zeros(cells + 1)
        np.add.at(flow, first, share)
        np.add.at(flow, last + 1, -share)
        new = q * np.cumsum(flow)[:cells] / total
        return np.asarray(new / new.sum(), dtype=np.float64)

    def supports(q: Floats) -> bool:
        """Return whether every observation keeps some mass under ``q`` (else EM is stuck)."""
        cum = np.concatenate(([0.0], np.cumsum(q)))
        return bool(np.all(cum[last + 1] - cum[first] > 0))

    for _ in range(MAX_ROUNDS):
        p1 = step(p)
        p2 = step(p1)
        r, v = p1 - p, p2 - 2.0 * p1 + p
        norm_v = float(np.linalg.norm(v))
        alpha = min(-float(np.linalg.norm(r)) / norm_v, -1.0) if norm_v > 0 else -1.0
        jump = np.clip(p - 2.0 * alpha * r + alpha * alpha * v, 0.0, None)
        jumped = jump / jump.sum() if jump.sum() > 0 else p2
        new = step(jumped) if supports(jumped) else p2
        if float(np.max(np.abs(new - p))) < TOLERANCE:
            return new
        p = new
    return np.asarray(p, dtype=np.float64)
