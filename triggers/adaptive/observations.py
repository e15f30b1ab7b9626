"""What a wait tells about its source's arrival: an interval, never the arrival itself.

Polling sees only that the data landed between the last poke that found nothing and the
one that found it.  Every observation is therefore an interval of *offsets*, seconds after
the run's scheduled time (``scheduled_at``)::

    detected on a later poke        (last_miss, first_seen]    interval-censored
    detected on the first poke      [0, first_seen]            left-censored
    never seen by the deadline      (last_miss, inf)           right-censored

Data already there before the scheduled time counts as arriving at offset 0 (the model's
domain is ``[0, inf)``).  The tries of one task instance see the same arrival, so their
intervals are intersected into one observation.  Pure: stdlib and numpy.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

import numpy as np

from waitwise.triggers.store.records import WaitOutcome, WaitRecord

from .turnbull import Floats

__all__ = ["MAX_OFFSET_S", "Observation", "columns", "from_records", "observe"]

MAX_OFFSET_S: Final = 400 * 86_400.0
"""The latest arrival offset taken seriously (400 days); a record beyond it is dropped."""

_RIGHT_CENSORED: Final = frozenset({WaitOutcome.TIMEOUT, WaitOutcome.SKIPPED, WaitOutcome.ERROR})


@dataclass(frozen=True, slots=True)
class Observation:
    """One run's arrival, known to lie in ``(after_s, by_s]`` seconds after ``scheduled_at``.

    :param scheduled_at: the run's scheduled time, epoch seconds (seasonality and recency).
    :param after_s: the arrival came after this offset (``0.0``: no poke missed it).
    :param by_s: the arrival came at or before this offset; ``inf``: not seen at all.
    :param known_at: when the observation was recorded (the wait's end), epoch seconds; a
        wait plans only with what was known when it started (``0.0``: always known).
    :raises ValueError: naming the field, for NaN, negative, reversed or absurd values.
    """

    scheduled_at: float
    after_s: float
    by_s: float
    known_at: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.scheduled_at) and self.scheduled_at >= 0):
            raise ValueError(f"scheduled_at must be epoch seconds, got {self.scheduled_at!r}")
        if not 0.0 <= self.after_s <= MAX_OFFSET_S:
            raise ValueError(f"after_s must be in [0, {MAX_OFFSET_S:g}], got {self.after_s!r}")
        if not self.after_s <= self.by_s:  # `not <=` so NaN fails too
            raise ValueError(f"by_s must be >= after_s ({self.after_s!r}), got {self.by_s!r}")
        if math.isfinite(self.by_s) and self.by_s > MAX_OFFSET_S:
            raise ValueError(f"by_s must be <= {MAX_OFFSET_S:g} or inf, got {self.by_s!r}")
        if not (math.isfinite(self.known_at) and self.known_at >= 0):
            raise ValueError(f"known_at must be epoch seconds, got {self.known_at!r}")

    @property
    def censored(self) -> bool:
        """Return whether the data was never seen (right-censored)."""
        return math.isinf(self.by_s)

    @property
    def width(self) -> float:
        """Return the interval's width in seconds (``inf`` when right-censored)."""
        return self.by_s - self.after_s


def _offset(at: float, scheduled_at: float) -> float:
    return min(max(at - scheduled_at, 0.0), MAX_OFFSET_S)


def observe(record: WaitRecord) -> Observation | None:
    """Return what ``record`` says about the arrival, or ``None`` if nothing.

    Nothing is learned from a wait without a scheduled time, one the breaker rejected,
    one that was cancelled or re-opened (its final record speaks for it), one whose data
    was there before its first poke but which does not say when (schema 1), or one whose
    times lie beyond :data:`MAX_OFFSET_S`.
    """
    at = record.scheduled_at
    if at is None or record.ended_at - at > MAX_OFFSET_S:
        return None
    miss = record.last_miss_at
    after = _offset(miss, at) if miss is not None else 0.0
    known = record.ended_at
    if record.outcome is WaitOutcome.SUCCESS and record.first_seen_at is not None:
        by = _offset(record.first_seen_at, at)
        return Observation(at, min(after, by), by, known)
    if record.outcome in _RIGHT_CENSORED and miss is not None:
        return Observation(at, after, math.inf, known)
    return None


def from_records(records: Iterable[WaitRecord]) -> list[Observation]:
    """Return one observation per task instance with anything to say, oldest run first.

    The tries of a task instance (same dag, task, run and map index) are intersected; when
    they do not overlap (clock skew between hosts), the one written last wins
    (:func:`columns`, which this unpacks into objects).
    """
    found = [Observation(*map(float, row)) for row in zip(*columns(records), strict=True)]
    return sorted(found, key=lambda o: (o.scheduled_at, o.after_s, o.by_s))


def columns(records: Iterable[WaitRecord]) -> tuple[Floats, Floats, Floats, Floats]:
    """Return :func:`from_records` of ``records`` as arrays, ordered by when they were known.

    ``(scheduled_at, after_s, by_s, known_at)``.  One pass, and no object per record
    survives it: each record is reduced to floats and a hashed run key as it comes (a
    store's ``scan`` hands them over one at a time), so a triggerer reading 10,000 records
    of each of 100 sources does not promote a million objects into the garbage collector's
    oldest generation (every full collection stops the event loop).
    """
    rows: tuple[list[float], list[float], list[float], list[float]] = ([], [], [], [])
    keys: list[int] = []
    for record in records:
        seen = observe(record)
        if seen is None:
            continue
        for column, value in zip(
            rows, (seen.scheduled_at, seen.after_s, seen.by_s, seen.known_at), strict=True
        ):
            column.append(value)
        keys.append(hash((record.dag_id, record.task_id, record.run_id, record.map_index)))
    at, after, by, known = (np.array(column, dtype=np.float64) for column in rows)
    runs = np.array(keys, dtype=np.int64)
    if not runs.size:
        return at, after, by, known
    # The tries of a run: intersect (the latest try wins when they do not overlap).
    order = np.lexsort((known, runs))
    at, after, by, known, runs = at[order], after[order], by[order], known[order], runs[order]
    first = np.flatnonzero(np.r_[True, runs[1:] != runs[:-1]])
    last = np.r_[first[1:], runs.size] - 1
    lo, hi = np.maximum.reduceat(after, first), np.minimum.reduceat(by, first)
    apart = lo > hi
    lo, hi = np.where(apart, after[last], lo), np.where(apart, by[last], hi)
    at, known = at[first], known[last]
    ordered = np.argsort(known, kind="stable")
    return at[ordered], lo[ordered], hi[ordered], known[ordered]
