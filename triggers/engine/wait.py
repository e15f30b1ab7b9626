"""The life of one wait: admission, its windows polled by the hub, re-opening, the end.

Time model.  A wait has an *anchor* and one or more windows (see
:mod:`waitwise.triggers.policy.windows`): the first closes ``timeout`` seconds after the
anchor.  Pokes follow the policy's nominal schedule from each window's opening.  None of it
lives in memory only: a trigger rebuilt after a triggerer restart recomputes the anchor, the
windows and its place in the schedule, pokes once at once (the data may have landed while no
triggerer ran), then continues with the first nominal poke after the present.  The anchor
comes from, in order (:func:`anchor_of`):

1. ``started_at`` in the spec (the operator's ``defer`` path knows it);
2. the trigger timeout Airflow persisted for the task instance (``timeout_after``) minus the
   ``airflow_timeout`` the operator asked for (the ``start_from_trigger`` path, where no
   operator code runs before the trigger);
3. the first ``run()`` in this process (outside Airflow; not restart-proof).

Outcomes of a poke are kept apart: not there yet (poll on), a probe error (poke again after
the retry strategy's backoff; too many in a row end the wait as an error), any other failure
of the check (ends this wait alone), and a passed deadline (end, or re-open the wait when the
strategy says so).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from airflow.triggers.base import TriggerEvent

from waitwise.triggers import metrics
from waitwise.triggers.adaptive.policy import LEARNED, Bound
from waitwise.triggers.breaker.ledger import Ledger, TaskKey
from waitwise.triggers.engine.ending import epoch_or_none, finish, record_fields
from waitwise.triggers.engine.hub import Watch
from waitwise.triggers.engine.probe import Prober, subscribe
from waitwise.triggers.engine.progress import Tally, deliver
from waitwise.triggers.engine.tick import shared_reads
from waitwise.triggers.events import WaitStatus
from waitwise.triggers.policy import (
    IntervalPolicy,
    PollState,
    Schedule,
    Window,
    current,
    interval_at,
    plan,
)
from waitwise.triggers.profiles import OnDeadline
from waitwise.triggers.runtime import Runtime
from waitwise.triggers.spec import WaitSpec
from waitwise.triggers.store import WaitOutcome

log = logging.getLogger("waitwise.triggers.base")

_TAGS: dict[tuple[str, str | None, str | None, str | None], dict[str, str]] = {}


def tags_for(kind: str, spec: WaitSpec) -> dict[str, str]:
    """Return the metric tags of a wait (one shared dict per distinct set of tags)."""
    key = (kind, spec.source, spec.profile, spec.tier)
    found = _TAGS.get(key)
    if found is None:
        found = {"trigger": kind}
        if spec.source:
            found.update(source=spec.source, profile=spec.profile or "custom")
            if spec.tier:
                found["tier"] = spec.tier
        found = _TAGS.setdefault(key, found)
    return found


def _clock_time(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="seconds")


def anchor_of(spec: WaitSpec, timeout_after: dt.datetime | None, now: float) -> float:
    """Return the wait's anchor (the module docstring's three sources, in order)."""
    if spec.started_at is not None:
        return spec.started_at
    if spec.airflow_timeout is not None and timeout_after is not None:
        if timeout_after.tzinfo is None:
            timeout_after = timeout_after.replace(tzinfo=dt.UTC)
        return timeout_after.timestamp() - spec.airflow_timeout
    return now


@dataclass(slots=True)
class Wait:
    """One run of one wait: what it checks, how, for whom, and with what.

    :param spec: the wait's definition.
    :param query: what to check, in the terms of ``prober``.
    :param prober: the kind's shared batch checker.
    :param name: what is waited for, in log lines and messages.
    :param kind: the trigger kind (its class name), the ``trigger`` metric tag.
    :param key: the stable identity of the wait (the jitter seed).
    :param task: the Airflow task instance (``None`` outside Airflow).
    """

    spec: WaitSpec
    query: Any
    prober: Prober
    name: str
    kind: str
    key: str
    task: Any
    runtime: Runtime
    tags: dict[str, str] = field(init=False)
    ledger: Ledger | None = field(init=False)
    tally: Tally | None = field(init=False, default=None)  # set once the wait runs

    def __post_init__(self) -> None:
        self.tags = tags_for(self.kind, self.spec)
        self.ledger = None
        if self.spec.source is not None:
            # Breaker reads of the waits of a loop that start together: one per tick.
            store = shared_reads(self.runtime.store_for(self.spec.store))
            task = TaskKey.of(self.task)
            profile = self.spec.profile or "custom"
            self.ledger = Ledger(
                self.spec.source, profile, self.spec.breaker, store, task, self.runtime, self.tags
            )

    async def run(self, anchor: float) -> TriggerEvent:
        """Admit, poll the windows, record; return the one event of the wait."""
        windows, tally = self._start(anchor)
        timed_out = await self._earlier_timeout()
        if timed_out is not None:  # a retry Airflow forced on a timed-out sensor: end at once
            return await finish(self, WaitStatus.TIMEOUT, tally, timed_out, record=False)
        message = await self._admit()
        if message is not None:
            return await finish(self, WaitStatus.BREAKER_OPEN, tally, message)
        return await finish(self, await self._poll_windows(windows, tally), tally)

    async def _earlier_timeout(self) -> str | None:
        """Return why this try must end at once: the previous try of the task timed out."""
        if self.ledger is None:
            return None
        try:
            record = await self.ledger.earlier_try_timed_out()
        except Exception:  # fail open: without the history the try waits as usual
            log.exception("The history of %s cannot be read; the wait goes on", self.spec.source)
            return None
        if record is None:
            return None
        at = dt.datetime.fromtimestamp(record.ended_at, dt.UTC).isoformat(timespec="seconds")
        return (
            f"{self.name} not found by the deadline: try {record.try_number} timed out at {at} "
            "and its worker could not fail the task then; this try ends at once instead of "
            "waiting a new window"
        )

    async def _admit(self) -> str | None:
        """Ask the source's breaker; return why the wait is rejected, or ``None``.

        A breaker that cannot be read (the store is unreachable) admits the wait: waiting
        for data that may well arrive beats failing it for a bookkeeping outage.
        """
        if self.ledger is None:
            return None
        try:
            decision = await self.ledger.admit()
        except Exception:  # fail open: the wait polls as if the breaker were closed
            log.exception("The breaker of %s cannot be read; the wait goes on", self.spec.source)
            self.runtime.metrics.incr(metrics.BREAKER_UNAVAILABLE, self.tags)
            return None
        return None if decision.allowed else decision.message

    async def fail(self, anchor: float, exc: BaseException) -> TriggerEvent:
        """End the wait as an error before its first poke (e.g. its query cannot be made)."""
        log.error("Cannot wait for %s: %s: %s", self.name, type(exc).__name__, exc)
        _windows, tally = self._start(anchor)
        tally.failed(exc)
        return await finish(self, WaitStatus.ERROR, tally)

    async def cancelled(self) -> None:
        """Record that a person stopped the wait (task cleared, marked success or failed)."""
        self.runtime.metrics.incr(metrics.WAITS_CANCELLED, self.tags)
        if self.tally is not None:
            log.warning("Wait for %s cancelled by a user action", self.name)
            await self.record(WaitOutcome.CANCELLED, record_fields(self.spec, self.tally, None))

    def _start(self, anchor: float) -> tuple[tuple[Window, ...], Tally]:
        """Lay out the windows from ``anchor`` and open the wait's tally over them."""
        windows = self.windows(anchor)
        self.tally = Tally(windows[0].opens_at, windows[-1].closes_at)
        return windows, self.tally

    def windows(self, anchor: float) -> tuple[Window, ...]:
        """Return the wait's windows from ``anchor``."""
        retry = self.spec.retry
        reopen = retry.on_deadline is OnDeadline.REOPEN
        return plan(
            anchor,
            self.spec.timeout,
            max_reopens=retry.max_reopens if reopen else 0,
            reopen_backoff=retry.reopen_backoff,
            key=self.key,
        )

    async def record(self, outcome: WaitOutcome, fields: dict[str, Any]) -> None:
        """Write the wait's history record, retried (:func:`deliver`); never raises."""
        ledger = self.ledger
        if ledger is None:
            return
        what = f"Recording the wait for {self.name} in its history"
        if not await deliver(lambda: ledger.write(outcome, fields), self.runtime.clock, what):
            self.runtime.metrics.incr(metrics.RECORD_FAILURES, self.tags)

    async def _poll_windows(self, windows: tuple[Window, ...], tally: Tally) -> WaitStatus:
        clock = self.runtime.clock
        first = current(windows, clock.now()) or windows[-1]
        for window in windows[first.index :]:
            tally.reopened(window.index)
            pause = window.opens_at - clock.now()
            if pause > 0:
                await clock.sleep(pause)
            status = await self._poll_window(window, tally)
            if status is not WaitStatus.TIMEOUT or window is windows[-1]:
                return status
            await self._reopen(window, windows, tally)
        return WaitStatus.TIMEOUT  # pragma: no cover - the last window always returns above

    async def _poll_window(self, window: Window, tally: Tally) -> WaitStatus:
        """Hand the window to the loop's poll hub; return how it ended."""
        rt = self.runtime
        key = self.key + (f"#w{window.index}" if window.index else "")
        policy, closes_at = await self._policy_for(window, tally)
        future: asyncio.Future[WaitStatus] = asyncio.get_running_loop().create_future()
        watch = Watch(
            query=self.query,
            prober=self.prober,
            schedule=Schedule.resumed(policy, key, window.opens_at, rt.clock.now()),
            closes_at=closes_at,
            tally=tally,
            future=future,
            error_delay=self._error_delay(key),
            max_errors=self.spec.retry.max_probe_errors,
            name=self.name,
            tags=self.tags,
            due=rt.clock.now(),
        )
        hub = rt.hub()
        undo = await subscribe(self.prober, self.query, lambda: hub.expedite(watch), self.name)
        hub.watch(watch)
        try:
            return await future
        except Exception as exc:  # the hub could not settle this wait: end it alone
            log.exception("Polling %s failed", self.name)
            tally.failed(exc)
            return WaitStatus.ERROR
        finally:
            if undo is not None:
                undo()

    async def _policy_for(self, window: Window, tally: Tally) -> tuple[IntervalPolicy, float]:
        """Return the window's poll policy and deadline, learned from the source's history.

        Only the first window learns (a re-opened one polls by the fallback).  Binding fits
        the model at most once per source and refresh (:mod:`.learning`), in a thread.  A
        learned deadline (dynamic timeouts) can only come before the window's own.
        """
        poll = self.spec.poll
        if window.index or not isinstance(poll, LEARNED):
            return poll, window.closes_at
        scheduled_at = epoch_or_none(self.spec.scheduled_at)
        bound = poll.bind(None, scheduled_at, window.opens_at, window.closes_at)  # the fallback
        if self.ledger is not None and scheduled_at is not None and self.spec.source:
            store = self.runtime.store_for(self.spec.store)
            learner = self.runtime.learner()
            args = (poll, store, self.spec.source, self.tags, scheduled_at, window)
            try:
                bound = await learner.bound_within(*args) or bound
            except Exception:  # a model that cannot plan must not stop the wait
                log.exception("Planning the pokes of %s failed; polling by the fallback", self.name)
        closes_at = window.closes_at
        if bound.closes_at is not None and bound.closes_at < closes_at:
            if tally.deadline == closes_at:  # the wait's last window: its deadline moves
                tally.deadline = bound.closes_at
            closes_at = bound.closes_at
            log.info(
                "%s: learned deadline %s (the static one: %s)",
                self.name,
                _clock_time(closes_at),
                _clock_time(window.closes_at),
            )
        return self._planned(bound, scheduled_at or 0.0, window.opens_at, tally), closes_at

    def _planned(
        self, bound: Bound, scheduled_at: float, opens_at: float, tally: Tally
    ) -> IntervalPolicy:
        """Note the model and ETA a wait planned with (tally, log, metric); return its policy."""
        if bound.model_version is None:
            log.debug("%s: no usable history; polling by the fallback %r", self.name, bound.policy)
            return bound.policy
        self.runtime.metrics.incr(metrics.ADAPTIVE_PLANNED, self.tags)
        tally.model_version = bound.model_version
        tally.poke_times = []
        eta = bound.eta
        if eta is not None:
            tally.eta = {
                "at": scheduled_at + eta.median_s,
                "low_at": scheduled_at + eta.low_s,
                "high_at": scheduled_at + eta.high_s,
                "arrives": eta.arrives,
            }
        offsets = bound.plan.offsets if bound.plan else ()
        log.info(
            "%s: model %s predicts arrival %s (80%%: %s to %s, arrives %.0f%%); "
            "%d pokes planned from %+.3fs after the scheduled time",
            self.name,
            bound.model_version,
            *(_clock_time(tally.eta[k]) if tally.eta else "?" for k in ("at", "low_at", "high_at")),
            100.0 * (eta.arrives if eta else 0.0),
            len(offsets),
            opens_at - scheduled_at,
        )
        log.debug("%s: planned poke offsets after the scheduled time: %s", self.name, offsets)
        return bound.policy

    def _error_delay(self, key: str) -> Callable[[int], float]:
        """Return the retry strategy's backoff after the n-th probe error in a row."""
        backoff = self.spec.retry.probe_backoff

        def delay(errors_in_row: int) -> float:
            return interval_at(backoff, f"{key}#error", PollState(attempt=errors_in_row))

        return delay

    async def _reopen(self, window: Window, windows: tuple[Window, ...], tally: Tally) -> None:
        following = windows[window.index + 1]
        log.warning(
            "%s not found by deadline %d of %d; re-opening the wait at %s (pause %.0fs)",
            self.name,
            window.index + 1,
            len(windows),
            dt.datetime.fromtimestamp(following.opens_at, dt.UTC).isoformat(timespec="seconds"),
            following.opens_at - window.closes_at,
        )
        self.runtime.metrics.incr(metrics.REOPENS, self.tags)
        tally.reopened(following.index)
        await self.record(WaitOutcome.REOPENED, record_fields(self.spec, tally, None))
