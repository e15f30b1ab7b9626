"""How a wait ends: the payload, the record, the metrics and the event Airflow gets."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

from airflow.triggers.base import (
    TaskFailedEvent,
    TaskSkippedEvent,
    TaskSuccessEvent,
    TriggerEvent,
)

from waitwise.triggers import metrics
from waitwise.triggers.engine.listeners import listeners_registered
from waitwise.triggers.engine.progress import Tally, deliver
from waitwise.triggers.engine.tick import PerLoop
from waitwise.triggers.events import FoundItem, WaitPayload, WaitStatus
from waitwise.triggers.profiles import OnBreakerOpen
from waitwise.triggers.spec import WaitSpec
from waitwise.triggers.store import WaitOutcome

if TYPE_CHECKING:
    from waitwise.triggers.engine.wait import Wait

log = logging.getLogger("waitwise.triggers.base")

XCOM_IN_FLIGHT: Final = 8
"""The most XCom pushes of an event loop in flight at once (see :func:`push_xcom`)."""
_XCOM_SLOTS: Final = PerLoop(lambda: asyncio.Semaphore(XCOM_IN_FLIGHT))

_OUTCOMES = {
    WaitStatus.SUCCESS: WaitOutcome.SUCCESS,
    WaitStatus.ERROR: WaitOutcome.ERROR,
    WaitStatus.BREAKER_OPEN: WaitOutcome.BREAKER_OPEN,
}

_COUNTERS = {
    WaitStatus.SUCCESS: metrics.WAITS_SUCCEEDED,
    WaitStatus.TIMEOUT: metrics.WAITS_TIMED_OUT,
    WaitStatus.ERROR: metrics.WAITS_ERRORED,
    WaitStatus.BREAKER_OPEN: metrics.WAITS_REJECTED,
}


async def finish(
    wait: Wait,
    status: WaitStatus,
    tally: Tally,
    message: str | None = None,
    *,
    record: bool = True,
) -> TriggerEvent:
    """Count, record and log the end of ``wait``; return the event for Airflow.

    Recording is best effort once the outcome is known: a store or metrics failure is
    logged and counted, and the event (a detection above all) still reaches the task.
    ``record=False`` for a try that repeats an end already recorded (nothing new to count).

    The history record (and the breaker it feeds) and the XCom are written at the same
    time, both before the event is returned: each is a chain of round trips to the
    triggerer's parent, and when a source's files land together the endings pay for the
    longer chain instead of the sum of both.
    """
    rt, spec = wait.runtime, wait.spec
    now = rt.clock.now()
    message = message or message_for(wait, status, tally, now)
    if status is not WaitStatus.SUCCESS and isinstance(wait.query, Partial):
        tally.found, note = wait.query.partial()  # what a batch had when it ended
        message = f"{message}; {note}"
    payload = tally.payload(status, message, now)
    rt.metrics.incr(_COUNTERS[status], wait.tags)
    rt.metrics.timing(metrics.WAIT_SECONDS, payload["elapsed_s"], wait.tags)
    event = final_event(spec, payload)
    writes = [_push_xcom_of(wait, payload)] if _pushes_xcom(wait, event) else []
    if record:
        writes.append(wait.record(outcome_of(spec, status), record_fields(spec, tally, now)))
    await asyncio.gather(*writes)  # each delivers (retries) on its own and never raises
    # Success at DEBUG: Airflow already logs "Trigger fired event" with the payload, and a
    # second line per event is measurable CPU when thousands of files land at once.
    level = logging.DEBUG if status is WaitStatus.SUCCESS else logging.WARNING
    log.log(level, "%s", payload["message"])
    if tally.poke_times is not None:
        _log_pokes(wait, tally)
    return event


@runtime_checkable
class Partial(Protocol):
    """A query that can tell what had arrived when its wait ended without success."""

    def partial(self) -> tuple[list[FoundItem], str]:
        """Return the items found so far and a note for the message."""
        ...


def _pushes_xcom(wait: Wait, event: TriggerEvent) -> bool:
    """Return whether the wait pushes its payload as an XCom (it ends its task, in success)."""
    return wait.spec.xcom_push and isinstance(event, TaskSuccessEvent) and wait.task is not None


async def _push_xcom_of(wait: Wait, payload: WaitPayload) -> None:
    """Push ``payload`` as the wait's task's XCom (:func:`deliver`); never raises."""
    what = f"Pushing the XCom of {wait.name}"
    if not await deliver(lambda: push_xcom(wait.task, payload), wait.runtime.clock, what):
        wait.runtime.metrics.incr(metrics.XCOM_FAILURES, wait.tags)  # the task still succeeds


def _log_pokes(wait: Wait, tally: Tally) -> None:
    """Log a learned wait's poke times, as offsets after the scheduled time (replay's terms)."""
    scheduled_at = epoch_or_none(wait.spec.scheduled_at) or 0.0
    offsets = ", ".join(f"{t - scheduled_at:.3f}" for t in tally.poke_times or ())
    log.info("%s: pokes at +[%s]s after the scheduled time", wait.name, offsets)


def message_for(wait: Wait, status: WaitStatus, tally: Tally, now: float) -> str:
    """Return the one-line account of how ``wait`` ended, for the task log and payload."""
    waited = f"{now - tally.started_at:.1f}s, {tally.pokes} pokes"
    if status is WaitStatus.SUCCESS:
        return f"{wait.name} found after {waited}"
    limit = wait.spec.retry.max_probe_errors
    if status is WaitStatus.ERROR and tally.errors_in_row > limit:
        return (
            f"checking {wait.name} failed {tally.errors_in_row} times in a row "
            f"(limit {limit}); last error: {tally.last_error}"
        )
    if status is WaitStatus.ERROR:  # not a transient failure: retrying cannot help
        return f"checking {wait.name} cannot work: {tally.last_error}"
    return (
        f"{wait.name} not found by the deadline ({wait.spec.timeout:.0f}s per window, "
        f"{tally.reopens} re-opened; {waited})"
    )


def outcome_of(spec: WaitSpec, status: WaitStatus) -> WaitOutcome:
    """Return the history outcome of a wait that ended with ``status``."""
    if status is WaitStatus.TIMEOUT:
        return WaitOutcome.SKIPPED if spec.soft_fail else WaitOutcome.TIMEOUT
    return _OUTCOMES[status]


def record_fields(spec: WaitSpec, tally: Tally, detected_at: float | None) -> dict[str, Any]:
    """Return the history record's fields that come from the wait itself."""
    return {
        "started_at": tally.started_at,
        "deadline_at": tally.deadline,
        "first_seen_at": tally.first_seen_at,
        "detected_at": detected_at if tally.found else None,
        "last_miss_at": tally.last_miss_at,
        "pokes": tally.pokes,
        "reopens": tally.reopens,
        "error_count": tally.errors,
        "last_error_kind": tally.last_error_kind,
        "scheduled_at": epoch_or_none(spec.scheduled_at),
        "model_version": tally.model_version,
        "eta_at": tally.eta["at"] if tally.eta else None,
        "eta_low_at": tally.eta["low_at"] if tally.eta else None,
        "eta_high_at": tally.eta["high_at"] if tally.eta else None,
    }


def final_event(spec: WaitSpec, payload: WaitPayload) -> TriggerEvent:
    """Map the payload to the event Airflow gets.

    With ``end_from_trigger``: success ends the task (no worker); a soft-failed timeout
    and a skipping breaker skip it (no worker); an error or a failing breaker fails it with
    ``TaskFailedEvent`` (no worker; task ``retries`` apply).  A hard timeout resumes a
    worker whose ``execute_complete`` raises ``AirflowSensorTimeout``: only that path fails
    a sensor without using its retries (a ``TaskFailedEvent`` is retried since 3.3.1).
    Where listener plugins are installed, every end resumes a worker, so they see it
    (:mod:`waitwise.triggers.engine.listeners`).
    """
    status = WaitStatus(payload["status"])
    if not spec.end_from_trigger or listeners_registered():
        return TriggerEvent(dict(payload))  # type: ignore[no-untyped-call]
    if status is WaitStatus.SUCCESS:
        return TaskSuccessEvent()
    if status is WaitStatus.BREAKER_OPEN:
        skip = spec.on_breaker_open is OnBreakerOpen.SKIP
        return TaskSkippedEvent() if skip else TaskFailedEvent()
    if status is WaitStatus.ERROR:
        return TaskFailedEvent()
    if spec.soft_fail:
        return TaskSkippedEvent()
    return TriggerEvent(dict(payload))  # type: ignore[no-untyped-call]


async def push_xcom(ti: Any, payload: WaitPayload) -> None:
    """Store the payload as the task's ``return_value`` XCom.

    With Airflow's own XCom backend, through its async API on the loop: the value is
    serialized in memory, and the request goes to the triggerer's parent without a
    thread (through ``asyncio.to_thread`` the pushes of many waits ending together would
    hold the default executor's few threads, which every file check also needs).  A
    custom backend may do blocking I/O to serialize (an object store upload): it runs in a
    thread.

    At most :data:`XCOM_IN_FLIGHT` pushes of a loop are in flight.  The parent answers
    requests one at a time in arrival order, a push costing it 11 to 16 ms (measured with
    1,000 waits ending together); sent all at once, 1,000 pushes put every other request
    of the loop behind them, so the source's history record and breaker update (a chain
    of round trips) waited 12 s and every ending with them.  With a few in flight the
    parent is never idle and another request waits behind a few pushes at most.

    Not through ``TaskSuccessEvent(xcoms=...)``: Airflow 3.3 stores those values
    JSON-encoded twice, so downstream tasks would read a string.
    """
    from airflow.sdk.bases.xcom import BaseXCom
    from airflow.sdk.execution_time.xcom import XCom

    where = {
        "dag_id": ti.dag_id,
        "task_id": ti.task_id,
        "run_id": ti.run_id,
        "map_index": ti.map_index,
    }
    async with _XCOM_SLOTS.get():
        if XCom is BaseXCom:
            await XCom.aset("return_value", dict(payload), **where)
        else:
            await asyncio.to_thread(XCom.set, "return_value", dict(payload), **where)


def epoch_or_none(value: str | None) -> float | None:
    """Return an ISO 8601 time as epoch seconds; ``None`` for nothing or an unrendered template."""
    try:
        moment = dt.datetime.fromisoformat(value) if value else None
    except ValueError:
        return None
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()
