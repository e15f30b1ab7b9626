"""The poll loop every waitwise trigger shares: schedule, retries, re-opening, breaker, event.

A concrete trigger implements :meth:`PolicyTrigger.probe` (one read-only check),
:meth:`PolicyTrigger.prepare` and ``serialize_kwargs``.  The loop owns everything else.

Time model.  A wait has an *anchor* ``started_at`` and one or more windows (see
:mod:`waitwise.triggers.windows`): the first closes ``timeout`` seconds after the anchor.
Pokes follow the policy's nominal schedule from each window's opening.  None of it lives in
memory only: a trigger rebuilt after a triggerer restart recomputes the anchor, the windows
and its place in the schedule, pokes once at once (the data may have landed while no
triggerer ran), then continues with the first nominal poke after the present.  The anchor
comes from, in order:

1. ``started_at`` in the kwargs (the operator's ``defer`` path knows it);
2. the trigger timeout Airflow persisted for the task instance (``timeout_after``) minus the
   ``airflow_timeout`` the operator asked for (the ``start_from_trigger`` path, where no
   operator code runs before the trigger);
3. the first ``run()`` in this process (outside Airflow; not restart-proof).

Outcomes of a poke are kept apart: not there yet (poll on), a probe error (:class:`ProbeError`:
poke again after the retry strategy's backoff; too many in a row end the wait as an error),
and a passed deadline (end, or re-open the wait when the strategy says so).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Required, TypedDict

from airflow.triggers.base import (
    BaseTrigger,
    TriggerEvent,
)

from waitwise.triggers import metrics, runtime
from waitwise.triggers._ending import EndingMixin
from waitwise.triggers._fsbatch import FileQuery
from waitwise.triggers._hub import Watch, hub
from waitwise.triggers._progress import (
    Schedule,
    Tally,
    decisions_logged,
    log_decision,
    optional_seconds,
    positive_seconds,
    settle_poke,
)
from waitwise.triggers._shared import shared_policy, shared_retry
from waitwise.triggers.breaker import BreakerConfig
from waitwise.triggers.errors import ProbeError
from waitwise.triggers.events import FoundItem, WaitStatus
from waitwise.triggers.ledger import Ledger, TaskKey
from waitwise.triggers.policy import PollState, interval_at
from waitwise.triggers.profiles import OnDeadline, parse_on_breaker_open
from waitwise.triggers.store import WaitOutcome, validate_source
from waitwise.triggers.windows import Window, current, plan

__all__ = ["JSON", "PolicyKwargs", "PolicyTrigger", "optional_seconds", "positive_seconds"]

log = logging.getLogger(__name__)
JSON = Any


_DEFAULT_STORE: dict[str, JSON] = {"kind": "airflow"}


class PolicyKwargs(TypedDict, total=False):
    """The keyword arguments of :class:`PolicyTrigger`, for subclasses to pass through."""

    poll: Required[Mapping[str, JSON]]
    timeout: Required[float]
    started_at: float | None
    airflow_timeout: float | None
    soft_fail: bool
    end_from_trigger: bool
    xcom_push: bool
    seed: str | None
    retry: Mapping[str, JSON] | None
    source: str | None
    profile: str | None
    breaker: Mapping[str, JSON] | None
    on_breaker_open: str
    store: Mapping[str, JSON] | None
    scheduled_at: str | None


class PolicyTrigger(EndingMixin, BaseTrigger):
    """Poll :meth:`probe` on a policy's schedule until it finds something or gives up.

    :param poll: the interval policy as its JSON config (see :mod:`waitwise.triggers.policy`).
    :param timeout: seconds from the opening of a window to its deadline.
    :param started_at: the anchor in epoch seconds, when the caller knows it.
    :param airflow_timeout: the trigger timeout (seconds) the operator gave Airflow; with
        ``timeout_after`` it recovers the anchor on the ``start_from_trigger`` path.
    :param soft_fail: end a timed-out wait as skipped instead of failed.
    :param end_from_trigger: end the task here with task-ending events instead of resuming a
        worker (a hard timeout still resumes one short worker run: see :meth:`final_event`).
    :param xcom_push: when the task ends here, push the payload as its ``return_value`` XCom
        from the triggerer (through the Task SDK, in a worker thread: never on the loop).
    :param seed: key for the deterministic jitter; defaults to the task instance's identity.
    :param retry: the :class:`~waitwise.triggers.profiles.RetryStrategy` config.
    :param source: the data source's name: turns on wait history and its breaker.
    :param profile: the reliability profile's name, recorded with the history.
    :param breaker: the source's :class:`~waitwise.triggers.breaker.BreakerConfig` config.
    :param on_breaker_open: ``"fail"`` or ``"skip"`` a wait the open breaker rejects.
    :param store: where history and breaker state live (see ``Runtime.store_for``).
    :param scheduled_at: when the data was due (the run's data interval end or run_after, ISO
        8601), recorded with the history; the operator passes a template Airflow renders.
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
        retry: Mapping[str, JSON] | None = None,
        source: str | None = None,
        profile: str | None = None,
        breaker: Mapping[str, JSON] | None = None,
        on_breaker_open: str = "fail",
        store: Mapping[str, JSON] | None = None,
        scheduled_at: str | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.poll = poll if isinstance(poll, dict) else dict(poll)
        self.policy = shared_policy(self.poll)
        self.timeout = positive_seconds("timeout", timeout)
        self.started_at = started_at
        self.airflow_timeout = optional_seconds("airflow_timeout", airflow_timeout)
        self.soft_fail = soft_fail
        self.end_from_trigger = end_from_trigger
        self.xcom_push = xcom_push
        self.seed = seed
        self.retry = shared_retry(retry)
        self.source = None if source is None else validate_source(source)
        self.profile = profile
        self.breaker = BreakerConfig.from_config(breaker) if breaker else None
        self.on_breaker_open = parse_on_breaker_open(on_breaker_open)
        self.store = dict(store) if store else _DEFAULT_STORE  # never mutated: shared
        self.scheduled_at = scheduled_at

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
            "retry": self.retry.to_config(),
            "source": self.source,
            "profile": self.profile,
            "breaker": self.breaker.to_config() if self.breaker else None,
            "on_breaker_open": self.on_breaker_open.value,
            "store": self.store,
            "scheduled_at": self.scheduled_at,
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
        """Admit, poll the windows, record; yield exactly one event, then return."""
        rt = runtime.current()
        await self.prepare()
        windows = self.windows(rt.clock.now())
        tally = Tally(windows[0].opens_at, windows[-1].closes_at)
        ledger = self._ledger(rt)
        if ledger is not None:
            decision = await ledger.admit()
            if not decision.allowed:
                yield await self._finish(
                    WaitStatus.BREAKER_OPEN, tally, rt, ledger, decision.message
                )
                return
        status = await self._wait(windows, tally, rt, ledger)
        yield await self._finish(status, tally, rt, ledger)

    def windows(self, now: float) -> tuple[Window, ...]:
        """Return the wait's windows (anchor from the module docstring's three sources)."""
        reopen = self.retry.on_deadline is OnDeadline.REOPEN
        return plan(
            self._anchor(now),
            self.timeout,
            max_reopens=self.retry.max_reopens if reopen else 0,
            reopen_backoff=self.retry.reopen_backoff,
            key=self.seed_key(),
        )

    async def _wait(
        self, windows: tuple[Window, ...], tally: Tally, rt: runtime.Runtime, ledger: Ledger | None
    ) -> WaitStatus:
        first = current(windows, rt.clock.now()) or windows[-1]
        for window in windows[first.index :]:
            tally.reopens = window.index
            pause = window.opens_at - rt.clock.now()
            if pause > 0:
                await rt.clock.sleep(pause)
            status = await self._poll_window(window, tally, rt)
            if status is not WaitStatus.TIMEOUT or window is windows[-1]:
                return status
            await self._reopen(window, windows, tally, rt, ledger)
        return WaitStatus.TIMEOUT  # pragma: no cover - the last window always returns above

    async def _poll_window(self, window: Window, tally: Tally, rt: runtime.Runtime) -> WaitStatus:
        key = self.seed_key() + (f"#w{window.index}" if window.index else "")
        schedule = Schedule.resumed(self.policy, key, window.opens_at, rt.clock.now())
        query = self.batch_query()
        if query is not None:
            return await self._poll_in_hub(query, key, schedule, window, tally, rt)
        log.info(
            "Waiting for %s (window %d, poll=%s): deadline in %.1fs, resuming at poke %d",
            self.describe(),
            window.index,
            self.poll,
            window.closes_at - rt.clock.now(),
            schedule.state.attempt,
        )
        error_delay, name = self._error_delay(key), self.describe()
        while True:
            outcome = settle_poke(
                tally,
                await self._probe_once(rt),
                rt.clock.now(),
                schedule=schedule,
                closes_at=window.closes_at,
                error_delay=error_delay,
                max_errors=self.retry.max_probe_errors,
                name=name,
            )
            if isinstance(outcome, WaitStatus):
                return outcome
            if decisions_logged():
                log_decision(name, tally, schedule, window.closes_at, outcome)
            await rt.clock.sleep(outcome)

    def _error_delay(self, key: str) -> Callable[[int], float]:
        """Return the retry strategy's backoff after the n-th probe error in a row."""

        def delay(errors_in_row: int) -> float:
            state = PollState(attempt=errors_in_row)
            return interval_at(self.retry.probe_backoff, f"{key}#error", state)

        return delay

    def batch_query(self) -> FileQuery | None:
        """Return the check as a query the loop's poll hub can batch, or ``None``.

        Triggers that return one are polled by :mod:`waitwise.triggers._hub` (one scheduler
        and one thread hop per batch for every trigger on the loop); the others run their own
        loop around :meth:`probe`.
        """
        return None

    async def _poll_in_hub(
        self,
        query: FileQuery,
        key: str,
        schedule: Schedule,
        window: Window,
        tally: Tally,
        rt: runtime.Runtime,
    ) -> WaitStatus:
        future: asyncio.Future[WaitStatus] = asyncio.get_running_loop().create_future()
        entry = Watch(
            query=query,
            schedule=schedule,
            closes_at=window.closes_at,
            tally=tally,
            future=future,
            error_delay=self._error_delay(key),
            max_errors=self.retry.max_probe_errors,
            due=rt.clock.now(),
        )
        hub(rt.clock, rt.metrics).watch(entry)
        return await future

    async def _reopen(
        self,
        window: Window,
        windows: tuple[Window, ...],
        tally: Tally,
        rt: runtime.Runtime,
        ledger: Ledger | None,
    ) -> None:
        following = windows[window.index + 1]
        log.warning(
            "%s not found by deadline %d of %d; re-opening the wait at %s (pause %.0fs)",
            self.describe(),
            window.index + 1,
            len(windows),
            dt.datetime.fromtimestamp(following.opens_at, dt.UTC).isoformat(timespec="seconds"),
            following.opens_at - window.closes_at,
        )
        rt.metrics.incr(metrics.REOPENS, self._tags())
        if ledger is not None:
            tally.reopens = following.index
            await ledger.write(WaitOutcome.REOPENED, self._record_fields(tally, None))

    async def _probe_once(self, rt: runtime.Runtime) -> list[FoundItem] | ProbeError:
        """Probe once; a :class:`ProbeError` is returned (and counted), anything else raises."""
        rt.metrics.incr(metrics.POKES, self._tags())
        try:
            return await self.probe()
        except ProbeError as exc:
            rt.metrics.incr(metrics.PROBE_ERRORS, self._tags())
            return exc

    # ------------------------------------------------------------ identity
    def _anchor(self, now: float) -> float:
        after = self._timeout_after()
        if self.started_at is not None:
            return self.started_at
        if self.airflow_timeout is not None and after is not None:
            return after - self.airflow_timeout
        self.started_at = now
        return now

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

    def _ledger(self, rt: runtime.Runtime) -> Ledger | None:
        if self.source is None:
            return None
        store = rt.store_for(self.store)
        task = TaskKey.of(self.task_instance)
        return Ledger(self.source, self.profile or "custom", self.breaker, store, task, rt)

    def _tags(self) -> dict[str, str]:
        tags = {"trigger": type(self).__name__}
        if self.source:
            tags.update(source=self.source, profile=self.profile or "custom")
        return tags
