"""The demo's first days as history: replayed waits written as the trigger records them (pure).

:func:`replayed_records` runs the scenario's waits through
:func:`waitwise.triggers.adaptive.replay` (the trigger's own binding and scheduling code,
learning as it goes) and turns each into the :class:`~waitwise.triggers.store.WaitRecord` the
trigger would have written: started at its scheduled time, its pokes at the replay's offsets,
detected at the first poke at or after the arrival, else ended at the deadline (``skipped``
with ``soft_fail``, else ``timeout``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from waitwise.triggers.adaptive import Arrival, replay
from waitwise.triggers.adaptive.replay import Replayed
from waitwise.triggers.policy import IntervalPolicy
from waitwise.triggers.simulate.demo import Landing
from waitwise.triggers.store import WaitOutcome, WaitRecord

__all__ = ["arrivals_for", "replayed_records"]


def arrivals_for(
    landings: Sequence[Landing], last_day: datetime, days: int, timeout_s: float
) -> list[Arrival]:
    """Return one source's landings as arrivals on the calendar (day ``days - 1``: ``last_day``)."""
    return [
        Arrival(last_day - timedelta(days=days - 1 - landing.day), landing.offset_s, timeout_s)
        for landing in landings
    ]


def replayed_records(
    arrivals: Sequence[Arrival],
    policy: IntervalPolicy,
    *,
    source: str,
    profile: str,
    dag_id: str,
    task_id: str,
    soft_fail: bool,
    seed: int = 0,
) -> list[WaitRecord]:
    """Return the history records of ``arrivals`` polled by ``policy`` (learning as it goes)."""
    results = replay(arrivals, policy=policy, history=[], learn=True, seed=seed)
    return [
        _record(wait, result, source, profile, dag_id, task_id, soft_fail)
        for wait, result in zip(arrivals, results, strict=True)
    ]


def _record(
    wait: Arrival,
    result: Replayed,
    source: str,
    profile: str,
    dag_id: str,
    task_id: str,
    soft_fail: bool,
) -> WaitRecord:
    scheduled = wait.scheduled_at.timestamp()
    started = scheduled + wait.started_after_s
    deadline = started + wait.timeout_s
    offsets = result.poke_offsets
    seen = None
    if result.detected and result.latency_s is not None and wait.arrived_after_s is not None:
        seen = scheduled + wait.arrived_after_s + result.latency_s
    misses = [o for o in offsets if seen is None or scheduled + o < seen]
    outcome = WaitOutcome.SUCCESS
    if seen is None:
        outcome = WaitOutcome.SKIPPED if soft_fail else WaitOutcome.TIMEOUT
    return WaitRecord(
        source=source,
        profile=profile,
        dag_id=dag_id,
        task_id=task_id,
        run_id=f"scheduled__{wait.scheduled_at.isoformat()}",
        try_number=1,
        started_at=started,
        ended_at=seen if seen is not None else deadline,
        outcome=outcome,
        scheduled_at=scheduled,
        deadline_at=deadline,
        first_seen_at=seen,
        detected_at=seen,
        pokes=result.pokes,
        last_miss_at=scheduled + misses[-1] if misses else None,
        model_version=result.model_version,
        eta_at=None if result.eta_s is None else scheduled + result.eta_s,
        eta_low_at=None if result.eta_low_s is None else scheduled + result.eta_low_s,
        eta_high_at=None if result.eta_high_s is None else scheduled + result.eta_high_s,
    )
