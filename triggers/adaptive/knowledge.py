"""What a source's history says, in the forms the learned policies read it.

A :class:`Knowledge` is built once per history read (by the trigger's per-source cache, or
by :func:`~waitwise.triggers.adaptive.replay`), and fits a model lazily per
:class:`~.model.Learning` and per prefix of what was known when, so thousands of waits of
one source share one fit.  The observations are kept as four numpy arrays, not as objects:
a triggerer caching 100 sources of 10,000 waits would otherwise hold a million small
objects that every full garbage collection walks, with the event loop stopped (measured in
``devtools.bench.learning``).  Pure.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from waitwise.triggers.store.records import WaitOutcome, WaitRecord

from .model import ArrivalModel, Distribution, Learning, fit_arrays
from .observations import Observation, columns
from .tuning import Change, Rules, propose
from .turnbull import Floats

__all__ = ["RECENT_WAITS", "Knowledge"]

RECENT_WAITS = 50
"""Successful wait durations kept, newest last (the recent-average rule reads 10)."""
TRUST_CHECKS = 30
"""The newest detected arrivals a model must have foreseen before a wait plans with it."""
TRUSTED_FROM = 300
"""Observations from which a model is trusted without the check (by default: ``trust_from``)."""


class Knowledge:
    """A source's observations and recent successful wait durations, newest last.

    :param observations: the censored arrival observations (:mod:`.observations`).
    :param waits: seconds from start to detection of the latest successful waits.
    """

    __slots__ = (
        "_after",
        "_at",
        "_by",
        "_known",
        "_lock",
        "_models",
        "_trust",
        "changes",
        "waits",
    )

    def __init__(self, observations: Iterable[Observation], waits: Sequence[float] = ()) -> None:
        ordered = sorted(observations, key=lambda o: o.known_at)
        self._at = np.array([o.scheduled_at for o in ordered], dtype=np.float64)
        self._after = np.array([o.after_s for o in ordered], dtype=np.float64)
        self._by = np.array([o.by_s for o in ordered], dtype=np.float64)
        self._known = np.array([o.known_at for o in ordered], dtype=np.float64)
        self.waits: tuple[float, ...] = tuple(waits)
        self.changes: tuple[Change, ...] = ()  # the source's change log (auto-tuning)
        self._models: dict[tuple[Learning, int], ArrivalModel | None] = {}
        self._trust: dict[tuple[Learning, int, float], bool] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_records(cls, records: Iterable[WaitRecord]) -> Knowledge:
        """Return the knowledge of a source's history records (any order, one pass).

        The same observations as :func:`~.observations.from_records`, built without one
        object per record (see the module docstring): a store's ``scan`` folds its
        history through this.
        """
        ended: list[float] = []
        started: list[float] = []
        waits: list[float] = []
        seen: set[int] = set()  # a success stored twice (segment and loose copy) counts once

        def tap(records: Iterable[WaitRecord]) -> Iterator[WaitRecord]:
            for r in records:
                if r.outcome is WaitOutcome.SUCCESS and r.detected_at is not None:
                    key = hash(r.key)
                    if key in seen:
                        yield r
                        continue
                    seen.add(key)
                    ended.append(r.ended_at)
                    started.append(r.started_at)
                    waits.append(max(r.detected_at - r.started_at, 0.0))
                yield r

        found = columns(tap(records))
        latest = np.lexsort((np.array(started), np.array(ended)))[-RECENT_WAITS:]
        knowledge = cls((), tuple(float(w) for w in np.array(waits)[latest]))
        knowledge._at, knowledge._after, knowledge._by, knowledge._known = found
        return knowledge

    def __len__(self) -> int:
        """Return the number of observations."""
        return int(self._at.size)

    @property
    def observations(self) -> list[Observation]:
        """Return the observations, in the order they became known."""
        columns = (self._at, self._after, self._by, self._known)
        return [Observation(*map(float, row)) for row in zip(*columns, strict=True)]

    def model(self, learning: Learning, before: float | None = None) -> ArrivalModel | None:
        """Return the model of what was known before ``before`` (epoch seconds; ``None``: all).

        Fitted once per settings and prefix; ``None`` with too little history.  A wait asks
        with its anchor, so a trigger rebuilt after a restart, which reads a history that has
        grown since, plans with the same model as before the restart.  Thread-safe: the
        waits of a source bind in worker threads at once, and fit once.
        """
        with self._lock:
            return self._model(learning, before)

    def distribution(
        self, learning: Learning, before: float | None, scheduled_at: float
    ) -> tuple[ArrivalModel, Distribution] | None:
        """Return the model (see :meth:`model`) and its distribution for ``scheduled_at``.

        Under the same lock: a model computes its groups' estimates lazily.
        """
        with self._lock:
            model = self._model(learning, before)
            return None if model is None else (model, model.distribution(scheduled_at))

    def mix(
        self, learning: Learning, before: float | None, scheduled_at: float
    ) -> tuple[tuple[float, Distribution], ...]:
        """Return the model's mix of recent runs at ``scheduled_at`` (:meth:`ArrivalModel.mix`)."""
        with self._lock:
            model = self._model(learning, before)
            return () if model is None else model.mix(scheduled_at)

    def count(self, before: float | None) -> int:
        """Return how many observations were known before ``before`` (``None``: all)."""
        return len(self) if before is None else int(np.searchsorted(self._known, before))

    def trusted(
        self, learning: Learning, before: float | None, tail: float, trust_from: int = TRUSTED_FROM
    ) -> bool:
        """Return whether the model of what was known before ``before`` has earned its use.

        A prequential check: each of the newest :data:`TRUST_CHECKS` detected arrivals is
        put to the model fitted on what was known before it, which must have expected it
        where a plan polls densely (its interval ``(after, by]`` meets the central
        ``1 - tail`` of the model's arrival mass: ``cdf(by) >= tail / 2`` and
        ``cdf(after) <= 1 - tail / 2``).  Trusted when at most ``tail`` of them were not
        (one of 30 for the default 4%) and at least half of :data:`TRUST_CHECKS` could be
        checked; always from ``trust_from`` observations on.  A short history has not seen
        its tails yet, and a plan from it would leave them sparse.  Strict on purpose: a
        calibrated model fails it now and then (its arrivals fall outside the central mass
        at rate ``tail``), which costs savings during the cold start only.  Deterministic
        for a prefix (restarts get the same answer) and cached with the models.
        """
        with self._lock:
            count = self.count(before)
            if count >= trust_from:
                return True
            key = (learning, -count - 1, tail)
            if key not in self._trust:
                self._trust[key] = self._check(learning, count, tail)
            return self._trust[key]

    def _check(self, learning: Learning, count: int, tail: float) -> bool:
        detected = [j for j in range(learning.min_history, count) if np.isfinite(self._by[j])][
            -TRUST_CHECKS:
        ]
        if len(detected) < TRUST_CHECKS // 2:
            return False
        unexpected = 0
        for j in detected:
            model = self._model(learning, float(self._known[j]))  # what was known before j
            if model is None:
                return False
            dist = model.distribution(float(self._at[j]))
            low, high = dist.cdf_many(np.asarray([self._after[j], self._by[j]]))
            unexpected += bool(high < tail / 2 or low > 1.0 - tail / 2)
        return unexpected <= tail * len(detected)

    def propose(self, rules: Rules, now: float) -> Change | None:
        """Return the tuning due at ``now`` from these observations and :attr:`changes`."""
        return propose(self._after, self._by, self._known, self.changes, rules, now)

    def _model(self, learning: Learning, before: float | None) -> ArrivalModel | None:
        count = self.count(before)
        key = (learning, count)
        if key not in self._models:
            self._models[key] = fit_arrays(*self._prefix(count), learning)
        return self._models[key]

    def _prefix(self, count: int) -> tuple[Floats, Floats, Floats]:
        return self._at[:count], self._after[:count], self._by[:count]
