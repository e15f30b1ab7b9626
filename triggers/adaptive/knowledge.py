"""What a source's history says, in the forms the learned policies read it.

A :class:`Knowledge` is built once per history read (by the trigger's per-source cache, or
by :func:`~waitwise.triggers.adaptive.replay`), and fits a model lazily per
:class:`~.model.Learning`, so thousands of waits of one source share one fit.  Pure.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from waitwise.triggers.store.records import WaitOutcome, WaitRecord

from .model import ArrivalModel, Learning, fit
from .observations import Observation, from_records

__all__ = ["RECENT_WAITS", "Knowledge"]

RECENT_WAITS = 50
"""Successful wait durations kept, newest last (the recent-average rule reads 10)."""


@dataclass(slots=True)
class Knowledge:
    """A source's observations and recent successful wait durations, newest last.

    :param observations: the censored arrival observations (:mod:`.observations`).
    :param waits: seconds from start to detection of the latest successful waits.
    """

    observations: Sequence[Observation]
    waits: Sequence[float] = ()
    _models: dict[tuple[Learning, int], ArrivalModel | None] = field(default_factory=dict)
    _known: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.observations = sorted(self.observations, key=lambda o: o.known_at)
        self._known = [o.known_at for o in self.observations]

    @classmethod
    def from_records(cls, records: Iterable[WaitRecord]) -> Knowledge:
        """Return the knowledge of a source's history records (any order)."""
        records = sorted(records, key=lambda r: r.order)
        waits = [
            r.detected_at - r.started_at
            for r in records
            if r.outcome is WaitOutcome.SUCCESS and r.detected_at is not None
        ]
        return cls(from_records(records), tuple(max(w, 0.0) for w in waits[-RECENT_WAITS:]))

    def model(self, learning: Learning, before: float | None = None) -> ArrivalModel | None:
        """Return the model of what was known before ``before`` (epoch seconds; ``None``: all).

        Fitted once per settings and prefix; ``None`` with too little history.  A wait asks
        with its anchor, so a trigger rebuilt after a restart, which reads a history that has
        grown since, plans with the same model as before the restart.
        """
        count = len(self._known) if before is None else bisect.bisect_left(self._known, before)
        key = (learning, count)
        if key not in self._models:
            self._models[key] = fit(self.observations[:count], learning)
        return self._models[key]
