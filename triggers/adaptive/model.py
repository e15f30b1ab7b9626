"""A source's arrival model: Turnbull estimates by weekday and hour, weighted to the recent.

:func:`fit` turns observations (:mod:`.observations`) into an :class:`ArrivalModel`; the
model answers, for a run scheduled at ``t``, with a :class:`Distribution` of the arrival
offset (seconds after ``t``).  How:

- **Recency.**  Observation ``i`` weighs ``0.5 ** (age_i / half_life)``, ``age_i`` the time
  from its scheduled time to the newest observation's.  The reference is the newest
  observation, never the wall clock, so the same history always gives the same model (a
  restarted trigger plans the same pokes).
- **Drift.**  A source that gets steadily later (or earlier) is tracked by a trend: the
  Theil-Sen slope of the interval midpoints of the recent, narrowly bounded observations
  against their scheduled times.  When the drift over the span is at least half the
  midpoints' interquartile range, every observation is moved to the reference time
  (``offset + slope * (reference - scheduled_at)``) before fitting, and a distribution for
  ``t`` is moved back by ``slope * (t - reference)`` (extrapolated at most
  :data:`MAX_EXTRAPOLATION_S`).  A change of level (a step, not a slope) is followed by the
  recency weights and by :attr:`ArrivalModel.changed`: when most of the last
  :data:`CHANGE_WINDOW` arrivals lie outside the central 90% of the estimate before them, the
  waits before the change keep only :data:`CHANGE_DISCOUNT` of their weight.
- **Seasonality.**  Runs are grouped by the scheduled time's weekday and hour in the DAG's
  timezone (``zoneinfo``: DST moves the hour with the wall clock).  A distribution uses the
  most specific group, of (weekday, hour), hour and weekday, that holds at least
  :data:`MIN_GROUP_WEIGHT` of effective weight and differs significantly from all runs
  (:meth:`ArrivalModel._group`); otherwise all runs.  *Whether* the data arrives and *when*
  are chosen apart, so a weekend that mostly stays empty takes its chance of arriving from
  the weekend and the time of its rare arrivals from the broader group.

Pure and deterministic: stdlib, numpy and the observations; no clock.
"""

from __future__ import annotations

import hashlib
import math
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

import numpy as np

from .observations import Observation
from .turnbull import Estimate, Floats, estimate

__all__ = [
    "CHANGE_WINDOW",
    "MAX_EXTRAPOLATION_S",
    "MIN_GROUP_WEIGHT",
    "ArrivalModel",
    "Distribution",
    "Learning",
    "fit",
    "fit_arrays",
]

MIN_GROUP_WEIGHT: Final = 8.0
"""Weight a weekday/hour group needs before it is used instead of a broader one."""
MAX_EXTRAPOLATION_S: Final = 14 * 86_400.0
"""How far past the newest observation a trend is extrapolated."""
CHANGE_WINDOW: Final = 7
"""Recent arrivals checked for a change of pattern."""
CHANGE_DISCOUNT: Final = 0.02
"""Weight kept by the waits before a change of pattern, relative to their recency weight."""
TREND_POINTS: Final = 200
"""Recent narrowly bounded observations the trend is estimated from."""
_DAY: Final = 86_400.0


@dataclass(frozen=True, slots=True)
class Learning:
    """How a source's history is learned from.

    :param half_life_days: an observation this old weighs half the newest one.
    :param timezone: the DAG's timezone (IANA name), for weekday and hour groups.
    :param min_history: observations needed before the model is used at all.
    """

    half_life_days: float = 90.0
    timezone: str = "UTC"
    min_history: int = 10

    def __post_init__(self) -> None:
        if not (isinstance(self.half_life_days, int | float) and 0 < self.half_life_days < 1e5):
            raise ValueError(f"half_life_days must be in (0, 1e5), got {self.half_life_days!r}")
        if not isinstance(self.timezone, str):
            raise ValueError(f"timezone must be an IANA name, got {self.timezone!r}")
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"timezone must be an IANA name, got {self.timezone!r}") from exc
        if isinstance(self.min_history, bool) or not isinstance(self.min_history, int):
            raise ValueError(f"min_history must be an int, got {self.min_history!r}")
        if not 1 <= self.min_history <= 10_000:
            raise ValueError(f"min_history must be in [1, 10000], got {self.min_history!r}")


_NODES, _NODE_WEIGHTS = np.polynomial.hermite_e.hermegauss(9)
_NODE_WEIGHTS = _NODE_WEIGHTS / _NODE_WEIGHTS.sum()


@dataclass(frozen=True, slots=True)
class Distribution:
    """The arrival offset of one run: ``estimate``, smoothed, moved later by ``shift``.

    Offsets are seconds after the run's scheduled time.  Turnbull's estimate puts its mass
    on the few intervals where observations overlap, with gaps between that say "no data",
    not "no arrivals"; the distribution is that estimate convolved with a normal kernel of
    standard deviation ``bandwidth`` (9-point Gauss-Hermite quadrature), which keeps the
    CDF monotone.  :attr:`beyond` is the mass past :attr:`horizon`: the data arrives later
    than any observation says, or never.
    """

    estimate: Estimate
    shift: float = 0.0
    bandwidth: float = 0.0

    @property
    def horizon(self) -> float:
        """Return the latest offset the history bounds an arrival by."""
        return self.estimate.horizon + self.shift + 3.0 * self.bandwidth

    @property
    def beyond(self) -> float:
        """Return P(no arrival by the horizon)."""
        return self.estimate.beyond

    def cdf(self, offset: float) -> float:
        """Return P(arrival <= ``offset``)."""
        return float(self.cdf_many(np.asarray([offset], dtype=np.float64))[0])

    def cdf_many(self, offsets: Floats) -> Floats:
        """Return :meth:`cdf` at each offset."""
        base = np.asarray(offsets, dtype=np.float64) - self.shift
        if self.bandwidth <= 0.0:
            return self.estimate.cdf_many(base)
        points = base[None, :] - self.bandwidth * _NODES[:, None]
        values = self.estimate.cdf_many(points.reshape(-1)).reshape(points.shape)
        return np.asarray(_NODE_WEIGHTS @ values, dtype=np.float64)

    def quantile(self, q: float) -> float | None:
        """Return the offset by which the data has arrived with probability ``q``.

        ``None`` when the history cannot say (``q`` beyond what arrives by the horizon).
        Found by bisection on the CDF, to 0.01 s.
        """
        if q > 1.0 - self.beyond + 1e-12:
            return None
        low, high = -10.0 * self.bandwidth + self.shift, self.horizon
        if self.cdf(low) >= q:
            return max(low, 0.0)
        while high - low > 0.01:
            middle = (low + high) / 2.0
            low, high = (low, middle) if self.cdf(middle) >= q else (middle, high)
        return max(high, 0.0)

    def given_after(self, waited: float, q: float) -> float | None:
        """Return the ``q`` quantile of the arrival given it arrives, after ``waited``.

        This is the ETA: ``F^-1(F(w) + q * (F(horizon) - F(w)))``; ``None`` when nothing
        is expected to arrive after ``waited`` any more.
        """
        low, high = self.cdf(waited), 1.0 - self.beyond
        if high - low <= 1e-9:
            return None
        return self.quantile(low + q * (high - low))

    def arrives_after(self, waited: float) -> float:
        """Return P(the data arrives at all | not there at ``waited``)."""
        left = 1.0 - self.cdf(waited)
        return 0.0 if left <= 1e-12 else max(left - self.beyond, 0.0) / left


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


@dataclass(slots=True)
class ArrivalModel:
    """A source's fitted history; :meth:`distribution` answers for one scheduled time.

    :param version: identifies the history and settings it was fitted from (logged, and
        recorded with every wait that planned with it).
    :param count: observations it learned from.
    :param reference: the newest observation's scheduled time (the model's "now").
    :param slope: the trend, seconds of offset per second of calendar time.
    """

    learning: Learning
    version: str
    count: int
    reference: float
    slope: float
    _at: Floats
    _after: Floats
    _by: Floats
    _weights: Floats
    _groups: dict[str, np.ndarray]
    _cache: dict[str, Estimate] = field(default_factory=dict)
    _widths: dict[str, float] = field(default_factory=dict)

    def distribution(self, scheduled_at: float) -> Distribution:
        """Return the arrival distribution of the run scheduled at ``scheduled_at``."""
        weekday, hour = _local(scheduled_at, self.learning.timezone)
        names = (f"w{weekday}h{hour}", f"h{hour}", f"w{weekday}")
        whether = self._group(names, arrivals=False)
        when = self._group(names, arrivals=True)
        ahead = min(max(scheduled_at - self.reference, -MAX_EXTRAPOLATION_S), MAX_EXTRAPOLATION_S)
        est = _combine(self._estimate(when), self._estimate(whether))
        return Distribution(est, self.slope * ahead, self._bandwidth(when))

    @property
    def changed(self) -> bool:
        """Return whether the newest arrivals left the pattern (see the module docstring)."""
        return _change_point(self) is not None

    def _group(self, names: Sequence[str], *, arrivals: bool) -> str:
        """Return the most specific group of ``names`` that has weight and differs from all.

        *Differs* (:meth:`_differs`): for ``arrivals`` (when the data comes), the two-sample
        Kolmogorov-Smirnov distance between the group's and everyone's arrival CDFs exceeds
        its 5% critical value ``1.36 sqrt(1/n_g + 1/n)``; otherwise (whether it comes), the
        chance of arriving differs by more than 2 standard errors; ``n`` are effective sizes.
        A run whose groups do not differ uses the runs of the weekdays that do not differ
        either (``rest``): a late Wednesday must not move the other weekdays' estimate.
        """
        for name in names:
            if self._differs(name, arrivals):
                return name
        return self._rest(arrivals)

    def _differs(self, name: str, arrivals: bool) -> bool:
        n, n_all = self._effective(name, arrivals), self._effective("all", arrivals)
        if name not in self._groups or n < MIN_GROUP_WEIGHT:
            return False
        est, everyone = self._estimate(name), self._estimate("all")
        if arrivals:
            return _ks(est, everyone) > 1.36 * math.sqrt(1.0 / n + 1.0 / n_all)
        p, p_all = 1.0 - est.beyond, 1.0 - everyone.beyond
        error = math.sqrt(max(p_all * (1.0 - p_all), 0.01) * (1.0 / n + 1.0 / n_all))
        return abs(p - p_all) > 2.0 * error

    def _rest(self, arrivals: bool) -> str:
        """Return the group of runs on weekdays that do not differ (``all`` if none does)."""
        name = f"rest-{'when' if arrivals else 'whether'}"
        if name not in self._groups:
            member = self._groups["all"].copy()
            for day in range(7):
                if self._differs(f"w{day}", arrivals):
                    member &= ~self._groups[f"w{day}"]
            self._groups[name] = member
        rest = self._groups[name]
        if rest.all() or self._effective(name, arrivals) < MIN_GROUP_WEIGHT:
            return "all"
        return name

    def _effective(self, name: str, arrivals: bool) -> float:
        """Return a group's effective size: ``min((sum w)^2 / sum w^2, sum w)``.

        The first is Kish's effective sample size; the second counts in newest-observation
        units (weights are <= 1), so a group of old or discounted waits does not count as
        many observations of today.
        """
        member = self._groups.get(name)
        if member is None:
            return 0.0
        w = self._weights[member & np.isfinite(self._by)] if arrivals else self._weights[member]
        return min(float(w.sum() ** 2 / (w @ w)), float(w.sum())) if w.size else 0.0

    def _bandwidth(self, name: str) -> float:
        """Return the smoothing bandwidth of a group's arrival estimate (cached)."""
        found = self._widths.get(name)
        if found is None:
            found = bandwidth(self._estimate(name), self._effective(name, True))
            self._widths[name] = found
        return found

    def _estimate(self, name: str) -> Estimate:
        found = self._cache.get(name)
        if found is None:
            member = self._groups[name]
            found = estimate(self._after[member], self._by[member], self._weights[member])
            self._cache[name] = found
        return found


def _ks(a: Estimate, b: Estimate) -> float:
    """Return the largest gap between two estimates' CDFs of the arrival given arrival."""
    points = np.union1d(a.edges, b.edges)
    fa = a.cdf_many(points) / max(1.0 - a.beyond, 1e-12)
    fb = b.cdf_many(points) / max(1.0 - b.beyond, 1e-12)
    return float(np.max(np.abs(fa - fb)))


def _combine(when: Estimate, whether: Estimate) -> Estimate:
    """Return ``when``'s arrival times with ``whether``'s chance of arriving at all."""
    if when is whether:
        return when
    arrives = 1.0 - when.beyond
    if arrives <= 1e-12:
        return whether
    masses = np.append(when.masses[:-1] * ((1.0 - whether.beyond) / arrives), whether.beyond)
    return Estimate(when.edges, masses, whether.weight)


def _local(at: float, timezone: str) -> tuple[int, int]:
    local = datetime.fromtimestamp(at, zoneinfo.ZoneInfo(timezone))
    return local.weekday(), local.hour


def _trend(at: Floats, after: Floats, by: Floats) -> float:
    """Return the Theil-Sen slope of recent narrow midpoints, or 0 if not significant."""
    finite = np.flatnonzero(np.isfinite(by) & (after > 0))
    if finite.size < 10:
        return 0.0
    width = by[finite] - after[finite]
    narrow = finite[width <= max(3.0 * float(np.median(width)), 60.0)][-TREND_POINTS:]
    if narrow.size < 10:
        return 0.0
    x, y = at[narrow], (after[narrow] + by[narrow]) / 2.0
    i, j = np.triu_indices(x.size, k=1)
    dx = x[j] - x[i]
    keep = dx > 0
    if not np.any(keep):
        return 0.0
    slope = float(np.median((y[j] - y[i])[keep] / dx[keep]))
    spread = float(np.subtract(*np.percentile(y, [75, 25])))
    drift = abs(slope) * float(x[-1] - x[0])
    return slope if drift >= max(0.5 * spread, 60.0) else 0.0


def _change_point(model: ArrivalModel) -> int | None:
    """Return where the newest pattern starts, if most recent arrivals left the old one.

    The last :data:`CHANGE_WINDOW` arrivals are scored against the estimate of everything
    before them (trend already removed): when a majority lies outside its central 90%,
    the first of those outside is the change point.
    """
    arrived = np.flatnonzero(np.isfinite(model._by))
    if arrived.size < 3 * CHANGE_WINDOW:
        return None
    recent = arrived[-CHANGE_WINDOW:]
    before = int(recent[0])
    past = estimate(model._after[:before], model._by[:before], model._weights[:before])
    cdf = past.cdf_many((model._after[recent] + model._by[recent]) / 2.0)
    outside = (cdf < 0.05) | (cdf > 0.95 * (1.0 - past.beyond))
    if int(outside.sum()) <= CHANGE_WINDOW // 2:
        return None
    return int(recent[int(np.argmax(outside))])


def _version(learning: Learning, at: Floats, after: Floats, by: Floats) -> str:
    digest = hashlib.blake2b(digest_size=6)
    digest.update(repr((learning.half_life_days, learning.timezone)).encode())
    for array in (at, after, by):
        digest.update(np.ascontiguousarray(array).tobytes())
    return f"{at.size}-{digest.hexdigest()}"


def _groups(at: Floats, timezone: str) -> dict[str, np.ndarray]:
    local = [_local(float(t), timezone) for t in at]
    groups: dict[str, np.ndarray] = {"all": np.ones(at.size, dtype=bool)}
    for name, keys in (
        ("w{0}h{1}", local),
        ("h{1}", local),
        ("w{0}", local),
    ):
        labels = np.array([name.format(*k) for k in keys])
        for label in np.unique(labels):
            groups[str(label)] = labels == label
    return groups


def fit(
    observations: Sequence[Observation], learning: Learning | None = None
) -> ArrivalModel | None:
    """Return the arrival model of ``observations``, or ``None`` with too few of them.

    Deterministic: the same observations and settings give the same model and version.
    """
    at = np.array([o.scheduled_at for o in observations], dtype=np.float64)
    after = np.array([o.after_s for o in observations], dtype=np.float64)
    by = np.array([o.by_s for o in observations], dtype=np.float64)
    return fit_arrays(at, after, by, learning)


def fit_arrays(
    at: Floats, after: Floats, by: Floats, learning: Learning | None = None
) -> ArrivalModel | None:
    """Return :func:`fit` of observations given as arrays (scheduled times, bounds), any order."""
    learning = learning or Learning()
    if at.size < learning.min_history:
        return None
    order = np.lexsort((by, after, at))
    at, after, by = at[order], after[order], by[order]
    model = _build(learning, at, after, by)
    start = _change_point(model)
    return model if start is None else _build(learning, at, after, by, start)


def _build(
    learning: Learning, at: Floats, after: Floats, by: Floats, change: int | None = None
) -> ArrivalModel:
    """Return the model; observations before ``change`` weigh :data:`CHANGE_DISCOUNT` as much."""
    reference = float(at[-1])
    slope = _trend(at, after, by)
    moved = slope * (reference - at)
    limit = 400 * _DAY
    after_m = np.clip(after + moved, 0.0, limit)
    by_m = np.where(np.isfinite(by), np.clip(by + moved, 0.0, limit), math.inf)
    by_m = np.maximum(by_m, after_m)
    weights = 0.5 ** ((reference - at) / (learning.half_life_days * _DAY))
    if change is not None:
        weights[:change] *= CHANGE_DISCOUNT
    weights = np.maximum(weights, 1e-12)
    return ArrivalModel(
        learning=learning,
        version=_version(learning, at, after, by) + ("" if change is None else "c"),
        count=int(at.size),
        reference=reference,
        slope=slope,
        _at=at,
        _after=after_m,
        _by=by_m,
        _weights=weights,
        _groups=_groups(at, learning.timezone),
    )
