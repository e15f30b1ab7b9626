"""Finished waits' outcomes on their way to the source's breaker: batched, written on change.

Why: every wait of a source that ends feeds the source's breaker, and a breaker update is a
read-modify-write through the store (several Airflow Variable round trips and a settle wait,
see :mod:`waitwise.triggers.store.kv`).  Done once per wait, 1,000 waits of one source whose
files land together queue for minutes behind a per-source lock.  Here the outcomes reported
in one event-loop tick (and while an update is in flight) are applied together, in the order
they were reported, in one update; and nothing is written when they leave the breaker as it
is (a success on a closed breaker whose window holds only successes, say).

Contract of :meth:`VerdictBatch.submit`: the outcome is applied exactly once, in report order
within the process, and the call returns the breaker events it caused.  Across processes,
outcomes that change nothing are not written; they are ordered before any concurrent change
another process makes (a valid order for concurrent outcomes), and outcomes that do change
the breaker go through the store's update, with its guarantee.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from waitwise.triggers.breaker.events import BreakerEvent
from waitwise.triggers.breaker.machine import record
from waitwise.triggers.breaker.model import BreakerConfig, BreakerSnapshot
from waitwise.triggers.engine.tick import TickBatch
from waitwise.triggers.store import WaitStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One finished wait's verdict for the breaker."""

    config: BreakerConfig
    ok: bool
    at: float
    wait: str | None = None  # the wait's id: a wait two triggerers ran counts once


def fold(
    snapshot: BreakerSnapshot, outcomes: list[Outcome]
) -> tuple[BreakerSnapshot, list[list[BreakerEvent]]]:
    """Return ``snapshot`` after ``outcomes`` in order, and the events each one caused."""
    caused = []
    for outcome in outcomes:
        snapshot, events = record(snapshot, outcome.config, outcome.ok, outcome.at, outcome.wait)
        caused.append(events)
    return snapshot, caused


def unchanged(before: BreakerSnapshot, after: BreakerSnapshot) -> bool:
    """Return whether ``after`` is ``before`` apart from the store's version counter."""
    return replace(after, version=before.version) == before


class VerdictBatch:
    """The outcomes of one source waiting to reach its breaker, in one process and loop."""

    def __init__(self, store: WaitStore, source: str) -> None:
        self.store, self.source = store, source
        self._batch: TickBatch[Outcome, list[BreakerEvent]] = TickBatch(self._apply)
        self.updates = 0  # store updates made (a batch that changed nothing makes none)

    async def submit(self, outcome: Outcome) -> list[BreakerEvent]:
        """Apply ``outcome`` with whatever else arrives meanwhile; return its events."""
        return await self._batch.submit(outcome)

    async def _apply(self, outcomes: list[Outcome]) -> list[list[BreakerEvent]]:
        current = await self.store.get_breaker(self.source) or BreakerSnapshot(self.source)
        after, caused = fold(current, outcomes)
        if unchanged(current, after):
            return caused
        box: list[list[list[BreakerEvent]]] = []

        def update(stored: BreakerSnapshot | None) -> BreakerSnapshot:
            new, events = fold(stored or BreakerSnapshot(self.source), outcomes)
            box[:] = [events]
            return new

        await self.store.update_breaker(self.source, update)
        self.updates += 1
        return box[0]
