"""The poll loop every waitwise trigger shares: schedule from a policy, deadline, final event.

A concrete trigger implements :meth:`PolicyTrigger.probe` (one read-only check) and
:meth:`PolicyTrigger.serialize`.  The loop owns everything else.

Time model.  A wait has an *anchor* ``started_at`` and a *deadline* ``started_at + timeout``, both
epoch seconds.  The poke schedule is nominal: poke *k* is due at ``started_at + T_k`` where ``T_k``
is the sum of the first ``k - 1`` intervals the policy returns for this wait's seed key.  Neither
the anchor nor the schedule lives in memory only, so a trigger rebuilt after a triggerer restart
recomputes both, pokes once at once (the data may have landed while no triggerer ran), then
continues with the first nominal poke after the present.  The anchor comes from, in order:

1. ``started_at`` in the kwargs (the operator's ``defer`` path knows it);
2. the trigger timeout Airflow persisted for the task instance (``timeout_after``) minus the
   ``airflow_timeout`` window the operator asked for (the ``start_from_trigger`` path, where no
   operator code runs before the trigger);
3. the first ``run()`` in this process (outside Airflow; not restart-proof).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow.triggers.base import (
    BaseTrigger,
    TaskSkippedEvent,
    TaskSuccessEvent,
    TriggerEvent,
)

from waitwise.triggers import metrics, runtime
from waitwise.triggers.errors import PolicyConfigError, ProbeError
from waitwise.triggers.events import FoundItem, WaitPayload, WaitStatus
from waitwise.triggers.policy import (
    MIN_INTERVAL,
    IntervalPolicy,
    PollState,
    interval_at,
    policy_from_config,
    resume,
)

log = logging.getLogger(__name__)
JSON = Any


def optional_seconds(name: str, value: object) -> float | None:
    """Return :func:`positive_seconds` of ``value``, or ``None`` for ``None``."""
    return None if value is None else positive_seconds(name, value)


def positive_seconds(name: str, value: object) -> float:
    """Normalize a duration (number or :class:`~datetime.timedelta`) to float seconds > 0.

    :raises PolicyConfigError: naming ``name`` and the value when it is not a positive duration.
    """
    if isinstance(value, dt.timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PolicyConfigError(f"{name} must be a number of seconds, got {value!r}")
    if not value > 0 or value == float("inf"):
        raise PolicyConfigError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


@dataclass(slots=True)
class _Schedule:
    """Where a wait stands in its nominal poke schedule (pure arithmetic, no I/O)."""

    policy: IntervalPolicy
    key: str
    started_at: float
    state: PollState

    @classmethod
    def resumed(cls, policy: IntervalPolicy, key: str, started_at: float, now: float) -> _Schedule:
        state = resume(policy, key, max(now - started_at, 0.0))
        return cls(policy, key, started_at, state)

    def delay_until_next(self, now: float, deadline: float) -> float:
        """Return seconds until the first nominal poke after ``now``, clamped to the deadline."""
        while self.started_at + self.state.elapsed <= now:
            interval = interval_at(self.policy, self.key, self.state)
            self.state = self.state.advance(interval)
        due = min(self.started_at + self.state.elapsed, deadline)
        return max(due - now, MIN_INTERVAL)


@dataclass(slots=True)
class _Tally:
    """What this trigger run has seen so far."""

    started_at: float
    deadline: float
    pokes: int = 0
    errors: int = 0
    last_error: str | None = None
    found: list[FoundItem] = field(default_factory=list)
    first_seen_at: float | None = None

    def payload(self, status: WaitStatus, message: str, now: float) -> WaitPayload:
        return WaitPayload(
            status=status.value,
            message=message,
            found=self.found,
            first_seen_at=self.first_seen_at,
            pokes=self.pokes,
            errors=self.errors,
            last_error=self.last_error,
            started_at=self.started_at,
            deadline=self.deadline,
            ended_at=now,
            elapsed_s=round(now - self.started_at, 6),
        )


class PolicyTrigger(BaseTrigger):
    """Poll :meth:`probe` on a policy's schedule until it finds something or the deadline passes.

    :param poll: the interval policy as its JSON config (see :mod:`waitwise.triggers.policy`).
    :param timeout: seconds from the wait's anchor to its deadline.
    :param started_at: the anchor in epoch seconds, when the caller knows it.
    :param airflow_timeout: the trigger timeout (seconds) the operator gave Airflow; with
        ``timeout_after`` it recovers the anchor on the ``start_from_trigger`` path.
    :param soft_fail: end a timed-out wait as skipped instead of failed.
    :param end_from_trigger: end the task here with task-ending events instead of resuming a
        worker (a hard timeout still resumes one short worker run: see the operator).
    :param xcom_push: when the task ends here, push the payload as its ``return_value`` XCom
        from the triggerer (through the Task SDK, in a worker thread: never on the loop).
    :param seed: key for the deterministic jitter; defaults to the task instance's identity.
    """

    def __init__(
        self,
        *,
        poll: Mapping[str, JSON],
        timeout: float,
        started_at: float | None = None,
        airflow_timeout: float | None = None,
        soft_fail: bool = False,
        end_from_trigger: bool = False,
        xcom_push: bool = False,
        seed: str | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.poll = dict(poll)
        self.policy = policy_from_config(self.poll)
        self.timeout = positive_seconds("timeout", timeout)
        self.started_at = started_at
        self.airflow_timeout = optional_seconds("airflow_timeout", airflow_timeout)
        self.soft_fail = soft_fail
        self.end_from_trigger = end_from_trigger
        self.xcom_push = xcom_push
        self.seed = seed

    # ------------------------------------------------------------ contract
    def serialize(self) -> tuple[str, dict[str, JSON]]:
        """Return ``(classpath, kwargs)``; kwargs are plain JSON."""
        cls = type(self)
        return f"{cls.__module__}.{cls.__qualname__}", self.serialize_kwargs()

    def serialize_kwargs(self) -> dict[str, JSON]:
        """Return the kwargs common to every policy trigger."""
        return {
            "poll": self.poll,
            "timeout": self.timeout,
            "started_at": self.started_at,
            "airflow_timeout": self.airflow_timeout,
            "soft_fail": self.soft_fail,
            "end_from_trigger": self.end_from_trigger,
            "xcom_push": self.xcom_push,
            "seed": self.seed,
        }

    async def probe(self) -> list[FoundItem]:
        """Check the source once; return what was found (empty: not yet).

        Read-only and side-effect free (a trigger may run twice).  Raise :class:`ProbeError`
        for a transient failure of the check itself; anything else fails the trigger.
        """
        raise NotImplementedError

    async def prepare(self) -> None:
        """Resolve what the probe needs once per run (connections, absolute paths)."""

    def describe(self) -> str:
        """Return what this trigger waits for, for log lines and messages."""
        return type(self).__name__

    # ------------------------------------------------------------ the loop
    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poke on schedule; yield exactly one event, then return."""
        rt = runtime.current()
        await self.prepare()
        started_at, deadline = self.window(rt.clock.now())
        tally = _Tally(started_at, deadline)
        schedule = _Schedule.resumed(self.policy, self.seed_key(), started_at, rt.clock.now())
        log.info(
            "Waiting for %s: poll=%s, deadline in %.1fs, resuming at poke %d",
            self.describe(),
            self.poll,
            deadline - rt.clock.now(),
            schedule.state.attempt,
        )
        while True:
            await self._poke(tally, rt)
            now = rt.clock.now()
            if tally.found:
                yield await self._finish(WaitStatus.SUCCESS, tally, now, rt)
                return
            if now >= deadline:
                yield await self._finish(WaitStatus.TIMEOUT, tally, now, rt)
                return
            delay = schedule.delay_until_next(now, deadline)
            log.debug(
                "%s not found at poke %d (attempt %d, +%.1fs): sleeping %.3fs (%s)",
                self.describe(),
                tally.pokes,
                schedule.state.attempt,
                now - started_at,
                delay,
                "deadline clamp" if started_at + schedule.state.elapsed > deadline else "policy",
            )
            await rt.clock.sleep(delay)

    def window(self, now: float) -> tuple[float, float]:
        """Return ``(anchor, deadline)`` in epoch seconds (see the module docstring)."""
        after = self._timeout_after()
        if self.started_at is not None:
            anchor = self.started_at
        elif self.airflow_timeout is not None and after is not None:
            anchor = after - self.airflow_timeout
        else:
            anchor = self.started_at = now
        return anchor, anchor + self.timeout

    def _timeout_after(self) -> float | None:
        after = getattr(self, "timeout_after", None)
        if after is None:
            return None
        if after.tzinfo is None:
            after = after.replace(tzinfo=dt.UTC)
        return float(after.timestamp())

    def seed_key(self) -> str:
        """Return the jitter seed: explicit, else the task instance, else the kwargs."""
        if self.seed:
            return self.seed
        ti = self.task_instance
        if ti is not None:
            return f"{ti.dag_id}#{ti.task_id}#{ti.run_id}#{ti.map_index}"
        blob = json.dumps(self.serialize(), sort_keys=True, default=str)
        return hashlib.sha1(blob.encode(), usedforsecurity=False).hexdigest()

    async def _poke(self, tally: _Tally, rt: runtime.Runtime) -> None:
        tally.pokes += 1
        try:
            found = await self.probe()
        except ProbeError as exc:
            tally.errors += 1
            tally.last_error = f"{type(exc.__cause__ or exc).__name__}: {exc}"
            rt.metrics.incr(metrics.PROBE_ERRORS, self._tags())
            log.warning("Probe of %s failed: %s", self.describe(), tally.last_error)
            return
        if found:
            tally.found = found
            tally.first_seen_at = rt.clock.now()

    async def _finish(
        self, status: WaitStatus, tally: _Tally, now: float, rt: runtime.Runtime
    ) -> TriggerEvent:
        found = status is WaitStatus.SUCCESS
        message = (
            f"{self.describe()} found after {now - tally.started_at:.1f}s and {tally.pokes} pokes"
            if found
            else f"{self.describe()} not found by the deadline "
            f"({self.timeout:.0f}s after the wait started; {tally.pokes} pokes)"
        )
        payload = tally.payload(status, message, now)
        rt.metrics.incr(metrics.WAITS_SUCCEEDED if found else metrics.WAITS_TIMED_OUT, self._tags())
        rt.metrics.timing(metrics.WAIT_SECONDS, payload["elapsed_s"], self._tags())
        log.info("%s", message)
        event = self.final_event(payload)
        if self.xcom_push and isinstance(event, TaskSuccessEvent):
            await asyncio.to_thread(self._push_xcom, payload)
        return event

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

    def final_event(self, payload: WaitPayload) -> TriggerEvent:
        """Map the payload to the event Airflow gets.

        With ``end_from_trigger``: success ends the task (no worker), a soft-failed timeout
        skips it (no worker); a hard timeout resumes a worker, whose ``execute_complete``
        raises ``AirflowSensorTimeout``: only that path fails a sensor without using its
        retries (a ``TaskFailedEvent`` would be retried, Airflow 3.3.1+).
        """
        if self.end_from_trigger and payload["status"] == WaitStatus.SUCCESS:
            return TaskSuccessEvent()
        if self.end_from_trigger and self.soft_fail:
            return TaskSkippedEvent()
        return TriggerEvent(dict(payload))  # type: ignore[no-untyped-call]

    def _tags(self) -> dict[str, str]:
        return {"trigger": type(self).__name__}
