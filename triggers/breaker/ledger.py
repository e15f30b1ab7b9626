"""A wait's dealings with its source's shared state: breaker admission, history, outcomes.

Only waits that name a ``source`` have a ledger.  It reads and writes through the store
(Airflow Variables by default), off the event loop, and turns the pure breaker's events into
log lines and metrics.  Records of waits of a source that end together are written together
(one segment per tick), and their outcomes reach the breaker through the source's
:class:`~waitwise.triggers.breaker.verdicts.VerdictBatch` (one update per tick, none when
nothing changes).  Writes are idempotent: the history record is keyed by task instance
and try, so a trigger that runs twice (HA, restart) records its wait once.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from waitwise.triggers import metrics
from waitwise.triggers.breaker import (
    BreakerConfig,
    BreakerOpened,
    BreakerSnapshot,
    Decision,
    Verdict,
    decide,
)
from waitwise.triggers.breaker.verdicts import Outcome
from waitwise.triggers.store import WaitOutcome, WaitRecord, WaitStore

if TYPE_CHECKING:
    from waitwise.triggers.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TaskKey:
    """Which task instance try a wait belongs to."""

    dag_id: str
    task_id: str
    run_id: str
    map_index: int
    try_number: int

    @property
    def key(self) -> tuple[str, str, str, int, int]:
        """Return the history key of this try (as :attr:`WaitRecord.key`)."""
        return (self.dag_id, self.task_id, self.run_id, self.map_index, self.try_number)

    @property
    def wait_id(self) -> str:
        """Return a short stable id of this try (what the breaker remembers it by)."""
        key = f"{self.dag_id}#{self.task_id}#{self.run_id}#{self.map_index}#{self.try_number}"
        return hashlib.blake2b(key.encode(), digest_size=8).hexdigest()

    @classmethod
    def of(cls, ti: Any) -> TaskKey:
        """Return the key of an Airflow task instance, or a local one outside Airflow."""
        if ti is None:
            return cls("local", "local", "local", -1, 1)
        return cls(ti.dag_id, ti.task_id, ti.run_id, ti.map_index, ti.try_number)


@dataclass(slots=True)
class Ledger:
    """Breaker admission and history for one wait of ``source``."""

    source: str
    profile: str
    breaker: BreakerConfig | None
    store: WaitStore
    task: TaskKey
    runtime: Runtime
    tags: dict[str, str] = field(default_factory=dict)  # the wait's metric tags

    async def admit(self) -> Decision:
        """Ask the source's breaker whether this wait may poll (writes only on a change)."""
        now = self.runtime.clock.now()
        if self.breaker is None:
            return Decision(Verdict.ALLOW, BreakerSnapshot(self.source))
        current = await self.store.get_breaker(self.source) or BreakerSnapshot(self.source)
        decision = decide(current, self.breaker, now)
        if decision.snapshot != current:
            decision = await self._persist_decision(now)
        self._emit(decision.events)
        return decision

    async def _persist_decision(self, now: float) -> Decision:
        config = self.breaker
        assert config is not None
        box: list[Decision] = []

        def update(current: BreakerSnapshot | None) -> BreakerSnapshot:
            box[:] = [decide(current or BreakerSnapshot(self.source), config, now)]
            return box[0].snapshot

        await self.store.update_breaker(self.source, update)
        return box[0]

    async def earlier_try_timed_out(self) -> WaitRecord | None:
        """Return the record of the latest earlier try if it timed out (hard), else ``None``.

        A sensor that timed out must fail without a retry, but only a worker can do that;
        if the worker cannot reach Airflow in time (an api-server outage longer than its
        retries), Airflow retries the task and the new try would wait a whole new window.
        """
        for try_number in range(self.task.try_number - 1, 0, -1):
            record = await self.store.find(self.source, (*self.task.key[:4], try_number))
            if record is not None:  # the latest try that recorded anything decides
                return record if record.outcome is WaitOutcome.TIMEOUT else None
        return None  # a try that ended at once because of this rule records nothing: look past it

    async def write(self, outcome: WaitOutcome, fields: dict[str, Any]) -> None:
        """Record the wait (upsert by task instance and try); feed the breaker if final."""
        now = self.runtime.clock.now()
        record = WaitRecord(
            source=self.source,
            profile=self.profile,
            dag_id=self.task.dag_id,
            task_id=self.task.task_id,
            run_id=self.task.run_id,
            map_index=self.task.map_index,
            try_number=self.task.try_number,
            ended_at=now,
            outcome=outcome,
            **fields,
        )
        self._time_detection(record)
        await self.runtime.records(self.store, self.source).submit(record)
        verdict = outcome.breaker_verdict
        if self.breaker is not None and verdict is not None:
            await self._record_verdict(verdict, now)

    def _time_detection(self, record: WaitRecord) -> None:
        """Emit how late the data was seen at most, and how far from its ETA (when known).

        ``waitwise.detection_latency``: ``first_seen_at - last_miss_at``, the longest the data
        can have waited unseen; ``waitwise.eta_error``: ``|first_seen_at - eta_at|``.
        """
        seen = record.first_seen_at
        if seen is None or record.outcome is not WaitOutcome.SUCCESS:
            return
        tags = self.tags or {"source": self.source, "profile": self.profile}
        if record.last_miss_at is not None:
            latency = max(seen - record.last_miss_at, 0.0)
            self.runtime.metrics.timing(metrics.DETECTION_LATENCY, latency, tags)
        if record.eta_at is not None:
            self.runtime.metrics.timing(metrics.ETA_ERROR, abs(seen - record.eta_at), tags)

    async def _record_verdict(self, ok: bool, now: float) -> None:
        config = self.breaker
        assert config is not None
        batch = self.runtime.verdicts(self.store, self.source)
        self._emit(await batch.submit(Outcome(config, ok, now, self.task.wait_id)))

    def _emit(self, events: Sequence[Any]) -> None:
        tags = self.tags or {"source": self.source, "profile": self.profile}
        for event in events:
            self.runtime.metrics.incr(metrics.breaker_event(type(event).__name__), tags)
            level = logging.WARNING if isinstance(event, BreakerOpened) else logging.INFO
            log.log(level, "Breaker of source %s: %s", self.source, event)
