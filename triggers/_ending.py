"""How a wait ends: the payload, the record, the metrics and the event Airflow gets."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import (
    TaskFailedEvent,
    TaskSkippedEvent,
    TaskSuccessEvent,
    TriggerEvent,
)

from waitwise.triggers import metrics, runtime
from waitwise.triggers._progress import Tally
from waitwise.triggers.events import WaitPayload, WaitStatus
from waitwise.triggers.profiles import OnBreakerOpen, RetryStrategy
from waitwise.triggers.store import WaitOutcome

if TYPE_CHECKING:
    from waitwise.triggers.ledger import Ledger

log = logging.getLogger("waitwise.triggers.base")

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


class EndingMixin:
    """The end of :class:`~waitwise.triggers.base.PolicyTrigger`'s wait (kept apart for size)."""

    timeout: float
    soft_fail: bool
    end_from_trigger: bool
    xcom_push: bool
    retry: RetryStrategy
    on_breaker_open: OnBreakerOpen
    scheduled_at: str | None
    task_instance: Any

    def describe(self) -> str:
        """Return what this trigger waits for, for log lines and messages."""
        raise NotImplementedError

    def _tags(self) -> dict[str, str]:
        raise NotImplementedError

    async def _finish(
        self,
        status: WaitStatus,
        tally: Tally,
        rt: runtime.Runtime,
        ledger: Ledger | None,
        message: str | None = None,
    ) -> TriggerEvent:
        now = rt.clock.now()
        payload = tally.payload(status, message or self._message(status, tally, now), now)
        tags = self._tags()
        rt.metrics.incr(_COUNTERS[status], tags)
        rt.metrics.timing(metrics.WAIT_SECONDS, payload["elapsed_s"], tags)
        if ledger is not None:
            await ledger.write(self._outcome(status), self._record_fields(tally, now))
        # Success at DEBUG: Airflow already logs "Trigger fired event" with the payload, and a
        # second line per event is measurable CPU when thousands of files land at once.
        level = logging.DEBUG if status is WaitStatus.SUCCESS else logging.WARNING
        log.log(level, "%s", payload["message"])
        event = self.final_event(payload)
        if self.xcom_push and isinstance(event, TaskSuccessEvent):
            await asyncio.to_thread(self._push_xcom, payload)
        return event

    def _message(self, status: WaitStatus, tally: Tally, now: float) -> str:
        waited = f"{now - tally.started_at:.1f}s, {tally.pokes} pokes"
        if status is WaitStatus.SUCCESS:
            return f"{self.describe()} found after {waited}"
        if status is WaitStatus.ERROR:
            return (
                f"checking {self.describe()} failed {tally.errors_in_row} times in a row "
                f"(limit {self.retry.max_probe_errors}); last error: {tally.last_error}"
            )
        return (
            f"{self.describe()} not found by the deadline ({self.timeout:.0f}s per window, "
            f"{tally.reopens} re-opened; {waited})"
        )

    def _outcome(self, status: WaitStatus) -> WaitOutcome:
        if status is WaitStatus.TIMEOUT:
            return WaitOutcome.SKIPPED if self.soft_fail else WaitOutcome.TIMEOUT
        return _OUTCOMES[status]

    def _record_fields(self, tally: Tally, detected_at: float | None) -> dict[str, Any]:
        return {
            "started_at": tally.started_at,
            "deadline_at": tally.deadline,
            "first_seen_at": tally.first_seen_at,
            "detected_at": detected_at if tally.found else None,
            "pokes": tally.pokes,
            "reopens": tally.reopens,
            "error_count": tally.errors,
            "last_error_kind": tally.last_error.split(":")[0] if tally.last_error else None,
            "scheduled_at": _epoch_or_none(self.scheduled_at),
        }

    def final_event(self, payload: WaitPayload) -> TriggerEvent:
        """Map the payload to the event Airflow gets.

        With ``end_from_trigger``: success ends the task (no worker); a soft-failed timeout
        and a skipping breaker skip it (no worker); an error or a failing breaker fails it with
        ``TaskFailedEvent`` (no worker; task ``retries`` apply).  A hard timeout resumes a
        worker whose ``execute_complete`` raises ``AirflowSensorTimeout``: only that path fails
        a sensor without using its retries (a ``TaskFailedEvent`` is retried since 3.3.1).
        """
        status = WaitStatus(payload["status"])
        if not self.end_from_trigger:
            return TriggerEvent(dict(payload))  # type: ignore[no-untyped-call]
        if status is WaitStatus.SUCCESS:
            return TaskSuccessEvent()
        skip_breaker = self.on_breaker_open is OnBreakerOpen.SKIP
        if status is WaitStatus.BREAKER_OPEN:
            return TaskSkippedEvent() if skip_breaker else TaskFailedEvent()
        if status is WaitStatus.ERROR:
            return TaskFailedEvent()
        if self.soft_fail:
            return TaskSkippedEvent()
        return TriggerEvent(dict(payload))  # type: ignore[no-untyped-call]

    def _push_xcom(self, payload: WaitPayload) -> None:
        """Store the payload as the task's ``return_value`` (blocking: run in a thread).

        Not through ``TaskSuccessEvent(xcoms=...)``: Airflow 3.3 stores those values
        JSON-encoded twice, so downstream tasks would read a string.
        """
        from airflow.sdk.execution_time.xcom import XCom

        ti = self.task_instance
        if ti is None:
            return
        XCom.set(
            "return_value",
            dict(payload),
            dag_id=ti.dag_id,
            task_id=ti.task_id,
            run_id=ti.run_id,
            map_index=ti.map_index,
        )


def _epoch_or_none(value: str | None) -> float | None:
    """Return an ISO 8601 time as epoch seconds; ``None`` for nothing or an unrendered template."""
    try:
        moment = dt.datetime.fromisoformat(value) if value else None
    except ValueError:
        return None
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()
