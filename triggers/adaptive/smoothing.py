"""Smoothing a Turnbull estimate: a normal kernel that widens where arrivals are rare.

Turnbull's estimate puts its mass on the few intervals where observations overlap, with
gaps between them that say "no data", not "no arrivals".  A plan read from it polls by
those lumps, densely on them and sparsely between, where the next arrival may as well
come.  :func:`smooth` spreads each cell's mass by a normal kernel: Silverman's bandwidth
(:func:`bandwidth`) where the arrivals are many, wider where they are few (Abramson's
square-root law), so a tail or a second mode that few observations describe is smoothed
in proportion to how little is known of it.  Pure: numpy and the estimate.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np

from .turnbull import Estimate, Floats

__all__ = ["GRID_POINTS", "WIDEN", "bandwidth", "normal_cdf", "smooth"]

WIDEN: Final = 5.0
"""Most a kernel widens where arrivals are rare, as a multiple of the bulk's bandwidth."""
GRID_POINTS: Final = 2_000
"""Most points a smoothed estimate's CDF is kept at."""


def bandwidth(est: Estimate, effective: float) -> float:
    """Return Silverman's bandwidth of ``est``'s arrivals: ``0.9 min(sd, IQR/1.34) n^-1/5``.

    ``sd`` and the interquartile range are those of the estimate's arrival part, ``n`` the
    effective number of observations (``(sum w)^2 / sum w^2``).
    """
    arrives = 1.0 - est.beyond
    if arrives <= 1e-9 or effective <= 1.0:
        return 0.0
    mids = (est.edges[:-1] + est.edges[1:]) / 2.0
    masses = est.masses[:-1] / arrives
    mean = float(masses @ mids)
    sd = math.sqrt(max(float(masses @ (mids - mean) ** 2), 0.0))
    q1, q3 = est.quantile(0.25 * arrives), est.quantile(0.75 * arrives)
    iqr = (q3 - q1) if q1 is not None and q3 is not None else sd * 1.34
    spread = min(sd, iqr / 1.34) if iqr > 0 else sd
    return float(0.9 * spread * effective**-0.2)


def smooth(est: Estimate, width: float) -> Estimate:
    """Return ``est`` smoothed by a normal kernel that widens where arrivals are rare.

    Abramson's square-root law (sample-point adaptive kernel): the mass ``m_j`` of cell ``j``
    (centre ``c_j``, width ``w_j``) spreads as a normal of standard deviation
    ``sqrt(h_j^2 + w_j^2 / 12)``, ``h_j = width x sqrt(g / f(c_j))`` clipped to
    ``[width / 2, WIDEN x width]``, ``f`` the pilot density (the same kernel, ``h_j = width``)
    and ``g`` its geometric mean over the arrivals.  A fixed kernel fits the bulk of the
    arrivals and leaves the rare ones (a tail, a second mode) as the lumps the few
    observations there happen to make; the plan polls by those lumps, sparsely between
    them, where the next arrival may as well come.  The result is the smoothed CDF on a
    grid (linear between points), with the same mass past the horizon: a CDF, so monotone.
    """
    arrives = 1.0 - est.beyond
    keep = est.masses[:-1] > 0
    if width <= 0.0 or arrives <= 1e-9 or not keep.any():
        return est
    centres = ((est.edges[:-1] + est.edges[1:]) / 2.0)[keep]
    cells = np.diff(est.edges)[keep] ** 2 / 12.0
    masses = est.masses[:-1][keep]
    pilot = _density(centres, centres, masses, np.sqrt(width**2 + cells))
    g = math.exp(float(masses @ np.log(np.maximum(pilot, 1e-300))) / float(masses.sum()))
    widths = width * np.clip(np.sqrt(g / np.maximum(pilot, 1e-300)), 0.5, WIDEN)
    sds = np.sqrt(widths**2 + cells)
    low, high = float(np.min(centres - 4.0 * sds)), float(np.max(centres + 4.0 * sds))
    step = max(float(np.min(widths)) / 3.0, (high - low) / GRID_POINTS)
    grid = np.arange(low, high + step, step)
    cdf = normal_cdf((grid[:, None] - centres[None, :]) / sds[None, :]) @ masses
    cdf = np.maximum.accumulate(cdf - cdf[0])
    cells_mass = np.diff(cdf) * (arrives / max(float(cdf[-1]), 1e-300))
    return Estimate(grid, np.append(cells_mass, est.beyond), est.weight)


def _density(at: Floats, centres: Floats, masses: Floats, sds: Floats) -> Floats:
    z = (at[:, None] - centres[None, :]) / sds[None, :]
    return np.asarray((np.exp(-0.5 * z * z) / (sds[None, :] * math.sqrt(2 * math.pi))) @ masses)


def normal_cdf(z: Floats) -> Floats:
    """Return the standard normal CDF (Abramowitz and Stegun 7.1.26: error < 1.5e-7)."""
    x = np.abs(z) / math.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    erf = 1.0 - poly * np.exp(-x * x)
    return np.asarray(0.5 * (1.0 + np.sign(z) * erf))
