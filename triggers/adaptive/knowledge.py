"""What a source's history says, in the forms the learned policies read it.

A :class:`Knowledge` is built once per history read (by the trigger's per-source cache, or
by :func:`~waitwise.triggers.adaptive.replay`), and fits a model lazily per
:class:`~.model.Learning`, so thousands of waits of one source share one fit.  Pure.
"""

from __future__ import annotations

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
    _models: dict[Learning, ArrivalModel | None] = field(default_factory=dict)

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

    def model(self, learning: Learning) -> ArrivalModel | None:
        """Return the model fitted with ``learning`` (once), ``None`` with too little history."""
        if learning not in self._models:
            self._models[learning] = fit(self.observations, learning)
        return self._models[learning]
