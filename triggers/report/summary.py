"""What the report says about each source and tier, computed from history records alone.

Pure: a source's records (any order, any read path), its breaker snapshot, the time of the
report and the window; no I/O, no clock.  The console command, the monitoring DAG and the
UI plugin render the same :class:`Report`.

Definitions, over the finished waits (the final record of each task-instance try: success,
timeout, skipped or error) that *ended* within ``[now - window_s, now)``:

- **success rate** = successes / finished waits, against the profile's ``reliability``
  (the presets' by name; a custom profile's from ``targets``, else unknown);
- **wait time** = ``detected_at - started_at`` of successful waits, p50 and p95 (nearest
  rank); **trend** = this window's p50 / the previous window's p50;
- **timeouts** = waits that ended at their deadline (failed or skipped), counted by the hour
  and weekday (UTC) of their scheduled time (of their start when unscheduled);
- **pokes per wait**; **worker-seconds**: waitwise's sensors start and end in the triggerer
  and use none; beside it what Airflow's own modes would have used for the same waits: poke
  mode holds a worker slot for the whole wait (``ended_at - started_at``), reschedule mode
  starts a worker per poke (:data:`RESCHEDULE_RUN_S` each, measured in
  ``shared/notes/baseline.md``: 4 runs, 5.5 worker-seconds);
- **ETA accuracy** over the waits that had a prediction and saw the data: the median of
  ``|first_seen_at - eta_at|`` and the share of them first seen inside the 80% interval
  (first seen is at most one poke interval after the arrival, so this slightly understates
  early coverage);
- **health** from :func:`~waitwise.triggers.adaptive.health` over the window's waits;
- **rejected**: waits the open breaker turned away;
- **recent success rate**: over the newest finished waits, as many as the preset profile's
  ``alerts.window`` (:data:`DEFAULT_ALERT_WINDOW` otherwise), whatever the window: what the
  alerts compare with the profile's ``alerts.min_success_rate``.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from waitwise.triggers.adaptive.health import health
from waitwise.triggers.breaker import BreakerSnapshot
from waitwise.triggers.profiles import PRESETS, AlertThresholds, tier_of
from waitwise.triggers.store.base import newest_last
from waitwise.triggers.store.records import WaitOutcome, WaitRecord

__all__ = ["RESCHEDULE_RUN_S", "Report", "SourceSummary", "TierSummary", "summarize"]

RESCHEDULE_RUN_S: Final = 5.5 / 4
"""Worker-seconds of one reschedule-mode poke (baseline: 4 worker runs, 5.5 s)."""
DAY: Final = 86_400.0
DEFAULT_ALERT_WINDOW: Final = 20
"""Waits the recent success rate counts when the profile is not a preset."""
_FINAL: Final = frozenset(
    {WaitOutcome.SUCCESS, WaitOutcome.TIMEOUT, WaitOutcome.SKIPPED, WaitOutcome.ERROR}
)
_TIMEOUTS: Final = frozenset({WaitOutcome.TIMEOUT, WaitOutcome.SKIPPED})


@dataclass(frozen=True, slots=True)
class SourceSummary:
    """One source over the report's window (see the module docstring for each figure)."""

    source: str
    profile: str
    tier: str
    target: float | None
    waits: int
    successes: int
    timeouts: int
    errors: int
    rejected: int
    success_rate: float | None
    wait_p50_s: float | None
    wait_p95_s: float | None
    previous_p50_s: float | None
    previous_p95_s: float | None
    trend: float | None
    pokes_per_wait: float | None
    poke_mode_worker_s: float
    reschedule_worker_s: float
    timeouts_by_hour: tuple[int, ...]
    timeouts_by_weekday: tuple[int, ...]
    daily_p50_s: tuple[tuple[str, float], ...]
    breaker: str | None
    consecutive_failures: int
    health: int | None
    eta_waits: int
    eta_error_p50_s: float | None
    eta_coverage: float | None
    recent_success_rate: float | None = None
    alerts: AlertThresholds | None = None

    @property
    def meets_target(self) -> bool | None:
        """Return whether the success rate reaches the target (``None``: cannot say)."""
        if self.success_rate is None or self.target is None:
            return None
        return self.success_rate >= self.target


@dataclass(frozen=True, slots=True)
class TierSummary:
    """The sources of one tier together."""

    tier: str
    sources: int
    waits: int
    successes: int
    target: float | None
    success_rate: float | None


@dataclass(frozen=True, slots=True)
class Report:
    """A report: when, over which window, per source and per tier."""

    now: float
    window_s: float
    sources: tuple[SourceSummary, ...]
    tiers: tuple[TierSummary, ...] = field(default=())

    @property
    def worker_seconds(self) -> tuple[float, float]:
        """Return what poke and reschedule mode would have used for all the waits."""
        return (
            sum(s.poke_mode_worker_s for s in self.sources),
            sum(s.reschedule_worker_s for s in self.sources),
        )


def summarize(
    histories: Mapping[str, Sequence[WaitRecord]],
    *,
    now: float,
    window_s: float = 7 * DAY,
    breakers: Mapping[str, BreakerSnapshot | None] | None = None,
    targets: Mapping[str, float] | None = None,
) -> Report:
    """Return the report of ``histories`` (records per source) over ``[now - window_s, now)``.

    :param targets: reliability per profile name, for custom profiles (presets are known).
    :raises ValueError: for a window that is not a positive number of seconds.
    """
    if not isinstance(window_s, int | float) or not 0 < window_s < math.inf:
        raise ValueError(f"window_s must be seconds > 0, got {window_s!r}")
    breakers = breakers or {}
    known = {name: p.reliability for name, p in PRESETS.items()} | dict(targets or {})
    sources = tuple(
        _source(name, records, now, window_s, breakers.get(name), known)
        for name, records in sorted(histories.items())
    )
    return Report(now, window_s, sources, _tiers(sources))


def _source(
    name: str,
    records: Sequence[WaitRecord],
    now: float,
    window_s: float,
    breaker: BreakerSnapshot | None,
    targets: Mapping[str, float],
) -> SourceSummary:
    every = newest_last(records)
    current = [r for r in every if now - window_s <= r.ended_at < now]
    previous = [r for r in every if now - 2 * window_s <= r.ended_at < now - window_s]
    final = [r for r in current if r.outcome in _FINAL]
    profile = final[-1].profile if final else (every[-1].profile if every else "")
    target = targets.get(profile)
    succeeded = [r for r in final if r.outcome is WaitOutcome.SUCCESS]
    timed_out = [r for r in final if r.outcome in _TIMEOUTS]
    waits = _waits(succeeded)
    before = _waits(_successes(previous))
    p50, previous_p50 = _quantile(waits, 0.5), _quantile(before, 0.5)
    preset = PRESETS.get(profile)
    thresholds = preset.alerts if preset is not None else None
    count = thresholds.window if thresholds is not None else DEFAULT_ALERT_WINDOW
    recent = [r for r in every if r.outcome in _FINAL and r.ended_at < now][-count:]
    recent_rate = (
        sum(r.outcome is WaitOutcome.SUCCESS for r in recent) / len(recent) if recent else None
    )
    found = health(final, target=target, breaker=breaker) if target and final else None
    error, coverage, with_eta = _eta(succeeded)
    return SourceSummary(
        source=name,
        profile=profile,
        tier=tier_of(target) if target is not None else "unknown",
        target=target,
        waits=len(final),
        successes=len(succeeded),
        timeouts=len(timed_out),
        errors=sum(r.outcome is WaitOutcome.ERROR for r in final),
        rejected=sum(r.outcome is WaitOutcome.BREAKER_OPEN for r in current),
        success_rate=len(succeeded) / len(final) if final else None,
        wait_p50_s=p50,
        wait_p95_s=_quantile(waits, 0.95),
        previous_p50_s=previous_p50,
        previous_p95_s=_quantile(before, 0.95),
        trend=p50 / previous_p50 if p50 is not None and previous_p50 else None,
        pokes_per_wait=statistics.fmean(r.pokes for r in final) if final else None,
        poke_mode_worker_s=sum(max(r.ended_at - r.started_at, 0.0) for r in final),
        reschedule_worker_s=sum(r.pokes for r in final) * RESCHEDULE_RUN_S,
        timeouts_by_hour=_count((_when(r).hour for r in timed_out), 24),
        timeouts_by_weekday=_count((_when(r).weekday() for r in timed_out), 7),
        daily_p50_s=_daily(succeeded),
        breaker=None if breaker is None else breaker.state.value,
        consecutive_failures=0 if breaker is None else breaker.consecutive_failures,
        health=None if found is None else found.score,
        eta_waits=with_eta,
        eta_error_p50_s=error,
        eta_coverage=coverage,
        recent_success_rate=recent_rate,
        alerts=thresholds,
    )


def _successes(records: Iterable[WaitRecord]) -> list[WaitRecord]:
    return [r for r in records if r.outcome is WaitOutcome.SUCCESS]


def _waits(succeeded: Iterable[WaitRecord]) -> list[float]:
    return [max(r.detected_at - r.started_at, 0.0) for r in succeeded if r.detected_at is not None]


def _quantile(values: Sequence[float], q: float) -> float | None:
    """Return the nearest-rank ``q`` quantile, ``None`` of nothing."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(q * len(ordered)) - 1, 0)]


def _when(record: WaitRecord) -> dt.datetime:
    at = record.scheduled_at if record.scheduled_at is not None else record.started_at
    return dt.datetime.fromtimestamp(at, dt.UTC)


def _count(values: Iterable[int], size: int) -> tuple[int, ...]:
    counts = [0] * size
    for value in values:
        counts[value] += 1
    return tuple(counts)


def _daily(succeeded: Iterable[WaitRecord]) -> tuple[tuple[str, float], ...]:
    """Return the p50 wait per UTC day of the end, oldest first (the trend chart's points)."""
    by_day: dict[str, list[float]] = defaultdict(list)
    for r in succeeded:
        if r.detected_at is not None:
            day = dt.datetime.fromtimestamp(r.ended_at, dt.UTC).strftime("%Y-%m-%d")
            by_day[day].append(max(r.detected_at - r.started_at, 0.0))
    return tuple((day, _quantile(w, 0.5) or 0.0) for day, w in sorted(by_day.items()))


def _eta(succeeded: Sequence[WaitRecord]) -> tuple[float | None, float | None, int]:
    pairs = [
        (r.first_seen_at, r.eta_at, r.eta_low_at, r.eta_high_at)
        for r in succeeded
        if r.first_seen_at is not None and r.eta_at is not None
    ]
    if not pairs:
        return None, None, 0
    error = _quantile([abs(seen - eta) for seen, eta, _, _ in pairs], 0.5)
    inside = [lo is not None and hi is not None and lo <= seen <= hi for seen, _, lo, hi in pairs]
    return error, sum(inside) / len(inside), len(pairs)


def _tiers(sources: Sequence[SourceSummary]) -> tuple[TierSummary, ...]:
    groups: dict[str, list[SourceSummary]] = defaultdict(list)
    for s in sources:
        groups[s.tier].append(s)
    order = {"high": 0, "medium": 1, "low": 2}
    found = []
    for tier, members in sorted(groups.items(), key=lambda kv: order.get(kv[0], 9)):
        waits = sum(s.waits for s in members)
        successes = sum(s.successes for s in members)
        targets = {s.target for s in members if s.target is not None}
        target = min(targets) if targets else None
        rate = successes / waits if waits else None
        found.append(TierSummary(tier, len(members), waits, successes, target, rate))
    return tuple(found)
