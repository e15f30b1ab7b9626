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
  the weekend and the time of its rare arrivals from the broader group.  A group that
  differs in *when* only by its timing (a Wednesday 30 minutes late) takes the shape of the
  runs that do not differ, moved (:meth:`ArrivalModel._moved`): far less noise than its own
  few runs.  :meth:`ArrivalModel.mix` gives the distributions of a source's recent runs
  together, for a latency budget spent over all of them (:func:`.planner.shared_cutoff`).
- **Smoothing.**  Each arrival estimate is smoothed by a kernel that widens where arrivals
  are rare (:mod:`.smoothing`), so a plan does not poll by the lumps a few observations of
  a tail happen to make.

Pure and deterministic: stdlib, numpy and the observations; no clock.
"""

from __future__ import annotations

import hashlib
import math
import zoneinfo
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

import numpy as np

from .observations import Observation
from .smoothing import bandwidth, smooth
from .turnbull import Estimate, Floats, estimate

__all__ = [
    "CHANGE_WINDOW",
    "MAX_EXTRAPOLATION_S",
    "MIN_GROUP_WEIGHT",
    "MIX_RUNS",
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
MIX_RUNS: Final = 100
"""Newest runs whose weekdays and hours make up a source's mix (:meth:`ArrivalModel.mix`)."""
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
    CDF monotone.  (An :class:`ArrivalModel` smooths its estimates itself, with a kernel
    that widens where arrivals are rare (:mod:`.smoothing`), and passes ``bandwidth=0``.)
    :attr:`beyond` is the mass past :attr:`horizon`: the data arrives later
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
    _smooth: dict[str, Estimate] = field(default_factory=dict)
    _chosen: dict[tuple[int, int], tuple[str, str]] = field(default_factory=dict)
    _combined: dict[tuple[str, str], Estimate] = field(default_factory=dict)
    _verdicts: dict[tuple[str, bool], bool] = field(default_factory=dict)
    _sizes: dict[tuple[str, bool], float] = field(default_factory=dict)
    _arrived: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self._arrived = np.isfinite(self._by)

    def distribution(self, scheduled_at: float) -> Distribution:
        """Return the arrival distribution of the run scheduled at ``scheduled_at``."""
        local = _local(scheduled_at, self.learning.timezone)
        return self._distribution(self._groups_of(local), scheduled_at)

    def mix(self, scheduled_at: float) -> tuple[tuple[float, Distribution], ...]:
        """Return the source's recent runs as ``(share, distribution)`` at ``scheduled_at``.

        The newest :data:`MIX_RUNS` runs, counted by weekday and hour in the DAG's timezone
        (the run at ``scheduled_at`` counts too): each (weekday, hour) gets the distribution a
        run on it would have at ``scheduled_at``'s trend.  A latency target held over the
        source's waits, not each wait apart, is spread over this mix (:mod:`.planner`).
        """
        keys = [_local(float(t), self.learning.timezone) for t in self._at[-MIX_RUNS:]]
        keys.append(_local(scheduled_at, self.learning.timezone))
        counts = Counter(self._groups_of(key) for key in keys)  # runs that share estimates
        return tuple(
            (n / len(keys), self._distribution(groups, scheduled_at))
            for groups, n in sorted(counts.items())
        )

    def _groups_of(self, local: tuple[int, int]) -> tuple[str, str]:
        """Return the groups a run on ``(weekday, hour)`` learns whether and when from (cached)."""
        found = self._chosen.get(local)
        if found is None:
            weekday, hour = local
            names = (f"w{weekday}h{hour}", f"h{hour}", f"w{weekday}")
            found = self._group(names, arrivals=False), self._group(names, arrivals=True)
            self._chosen[local] = found
        return found

    def _distribution(self, groups: tuple[str, str], scheduled_at: float) -> Distribution:
        whether, when = groups
        ahead = min(max(scheduled_at - self.reference, -MAX_EXTRAPOLATION_S), MAX_EXTRAPOLATION_S)
        est = self._combined.get(groups)
        if est is None:
            when_est = self._smoothed(when)
            est = when_est if whether == when else _combine(when_est, self._estimate(whether))
            self._combined[groups] = est
        return Distribution(est, self.slope * ahead)

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
                return self._moved(name) if arrivals else name
        return self._rest(arrivals)

    def _moved(self, name: str) -> str:
        """Return the arrival group of ``name``: the rest moved, when that explains it.

        A weekday or hour often differs by its timing only (a Wednesday 30 minutes late).
        Then the shape of the many runs that do not differ (:meth:`_rest`), moved by the
        difference of the medians, describes it with far less noise than its own few runs.
        *Explains*: the KS distance between the moved rest and the group is within the 5%
        critical value (:meth:`_group`); otherwise the group's own runs.  The moved rest is
        a group of its own, ``"{rest}{move:+}"``, with the rest's runs and weights.
        """
        base = self._rest(True)
        own, rest = self._estimate(name), self._estimate(base)
        mine = own.quantile(0.5 * (1.0 - own.beyond))
        theirs = rest.quantile(0.5 * (1.0 - rest.beyond))
        if base == name or mine is None or theirs is None:
            return name
        move = round(mine - theirs, 3)
        moved = f"{base}{move:+}"
        if moved not in self._cache:
            self._cache[moved] = Estimate(rest.edges + move, rest.masses, rest.weight)
            self._groups[moved] = self._groups[base]
        n, n_base = self._effective(name, True), self._effective(base, True)
        if _ks(self._cache[moved], own) > 1.36 * math.sqrt(1.0 / n + 1.0 / n_base):
            return name
        return moved

    def _differs(self, name: str, arrivals: bool) -> bool:
        found = self._verdicts.get((name, arrivals))
        if found is None:
            found = self._verdicts[(name, arrivals)] = self._test(name, arrivals)
        return found

    def _test(self, name: str, arrivals: bool) -> bool:
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
        found = self._sizes.get((name, arrivals))
        if found is None:
            w = self._weights[member & self._arrived] if arrivals else self._weights[member]
            found = min(float(w.sum() ** 2 / (w @ w)), float(w.sum())) if w.size else 0.0
            self._sizes[(name, arrivals)] = found
        return found

    def _smoothed(self, name: str) -> Estimate:
        """Return a group's arrival estimate, smoothed (:func:`smooth`; cached)."""
        found = self._smooth.get(name)
        if found is None:
            est = self._estimate(name)
            found = smooth(est, bandwidth(est, self._effective(name, True)))
            self._smooth[name] = found
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
