"""Each source's history, read once and shared by every wait of the source on a loop.

A learned policy (:mod:`waitwise.triggers.adaptive.policy`) binds to a source's
:class:`~waitwise.triggers.adaptive.Knowledge` when a wait starts.  Reading the history
goes through the store's ``scan`` (on the Task SDK path: one request per segment; the
records are decoded one at a time and folded into arrays, never held as objects), and
building the knowledge and fitting the model cost CPU; both happen once per source per
:data:`REFRESH_S`, whatever the number of waits: concurrent waits of a source share one
read in flight.  Building runs in a worker thread, never on the event loop.

A history that cannot be read leaves the source cold (its waits poll by the policy's
fallback) for :data:`RETRY_S`; the failure is logged once per source until a read
succeeds again, and counted each time (``waitwise.adaptive.fallbacks``).

The event loop.  Reading, decoding and fitting are Python and numpy work in worker
threads, and every such thread competes with the loop for the GIL: with several of them
busy the loop waited hundreds of milliseconds for it (``devtools.bench.learning``).  So a
loop reads one history at a time and fits one model at a time beside it (a source's waits
are planned as soon as its history is in, not after every other source's), and a wait gives
its plan :data:`PLAN_WAIT_S` to arrive: a source whose history is still being learned (a triggerer
starting thousands of waits) polls by its fallback for that wait, rather than delaying its
first poke, while the learning goes on for the waits after it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Final

from waitwise.triggers import metrics
from waitwise.triggers.adaptive import Knowledge
from waitwise.triggers.adaptive.policy import Adaptive, Bound, RecentAverage
from waitwise.triggers.adaptive.tuning import Change, Setting, resumed, reverted
from waitwise.triggers.clock import Clock
from waitwise.triggers.metrics import MetricsSink
from waitwise.triggers.policy import Window
from waitwise.triggers.store import WaitStore

Learned = Adaptive | RecentAverage  # the classes of policy.LEARNED, as a type

__all__ = ["PLAN_WAIT_S", "REFRESH_S", "RETRY_S", "Learner", "resume_tuning", "revert_tuning"]

REFRESH_S: Final = 600.0
"""How long a source's knowledge is used before the history is read again."""
RETRY_S: Final = 60.0
"""How long a source whose history could not be read stays cold before the next try."""
PLAN_WAIT_S: Final = 2.0
"""How long a wait waits for its plan before it polls by its fallback."""

log = logging.getLogger("waitwise.triggers.base")


@dataclass(slots=True)
class _Entry:
    knowledge: Knowledge | None
    until: float
    failed: bool = False


class Learner:
    """The sources' knowledge on one event loop (see the module docstring)."""

    def __init__(self, clock: Clock, sink: MetricsSink) -> None:
        self._clock, self._metrics = clock, sink
        self._known: dict[tuple[int, str], _Entry] = {}
        self._reading: dict[tuple[int, str], asyncio.Task[_Entry]] = {}
        self._reads = asyncio.Semaphore(1)  # one history read and decode at a time
        self._fits = asyncio.Semaphore(1)  # one fit and plan at a time, beside it
        self._tuning: dict[tuple[int, str], asyncio.Future[None]] = {}
        self._tried: dict[tuple[int, str], Knowledge] = {}  # the knowledge last tuned from
        # the change log read for a source's knowledge (auto-tuned policies only)
        self._changes: dict[
            tuple[int, str], tuple[Knowledge, asyncio.Future[tuple[Change, ...]]]
        ] = {}

    async def bound_within(
        self,
        policy: Learned,
        store: WaitStore,
        source: str,
        tags: dict[str, str],
        scheduled_at: float,
        window: Window,
    ) -> Bound | None:
        """Return ``policy`` bound to ``source``'s knowledge, or ``None`` if not in time.

        "In time": within :data:`PLAN_WAIT_S`; past it the learning goes on for later waits.
        """
        work = asyncio.ensure_future(self.bound(policy, store, source, tags, scheduled_at, window))
        done, _ = await asyncio.wait({work}, timeout=PLAN_WAIT_S)
        if not done:
            log.debug("The plan for a wait of %s is not ready; it polls by its fallback", source)
            self._metrics.incr(metrics.ADAPTIVE_LATE, tags)
            work.add_done_callback(_log_failure)  # nobody awaits it any more
            return None
        return work.result()

    async def bound(
        self,
        policy: Learned,
        store: WaitStore,
        source: str,
        tags: dict[str, str],
        scheduled_at: float,
        window: Window,
    ) -> Bound | None:
        """Return ``policy`` bound to ``source``'s knowledge, however long it takes.

        ``None`` when the source has no readable knowledge.
        """
        knowledge = await self.knowledge(store, source, tags)
        if knowledge is None:
            return None
        tuned = policy if isinstance(policy, Adaptive) and policy.auto_tune else None
        if tuned is not None:
            await self._read_changes(store, source, knowledge)
        args = (knowledge, scheduled_at, window.opens_at, window.closes_at)
        async with self._fits:
            bound = await asyncio.to_thread(policy.bind, *args)
        if tuned is not None:
            self._tune_soon(tuned, store, source, tags, knowledge)
        return bound

    async def _read_changes(self, store: WaitStore, source: str, knowledge: Knowledge) -> None:
        """Load ``source``'s change log into ``knowledge``: once per knowledge read, shared.

        Only auto-tuned policies read it, so a source that is not tuned costs no request.
        """
        key = (id(store), source)
        found = self._changes.get(key)
        if found is None or found[0] is not knowledge:
            found = (knowledge, asyncio.ensure_future(_changes_or_none(store, source)))
            self._changes[key] = found
        knowledge.changes = await asyncio.shield(found[1])

    async def wait_tunings(self) -> None:
        """Wait until the tunings started in the background are done."""
        while self._tuning:
            await asyncio.gather(*self._tuning.values())

    def _tune_soon(
        self,
        policy: Adaptive,
        store: WaitStore,
        source: str,
        tags: dict[str, str],
        knowledge: Knowledge,
    ) -> None:
        """Start the source's tuning beside the waits, once per knowledge read at most.

        One at a time per source; a tuning is due once a ``tune_every_s``, and the knowledge
        it reads changes only when the history is read again.
        """
        key = (id(store), source)
        if key in self._tuning or self._tried.get(key) is knowledge:
            return
        self._tried[key] = knowledge
        task = asyncio.ensure_future(self._tune(policy, store, source, tags, knowledge))
        self._tuning[key] = task
        task.add_done_callback(lambda _: self._tuning.pop(key, None))

    async def _tune(
        self,
        policy: Adaptive,
        store: WaitStore,
        source: str,
        tags: dict[str, str],
        knowledge: Knowledge,
    ) -> None:
        """Record the tuning due now, if any (:mod:`waitwise.triggers.adaptive.tuning`)."""
        try:
            async with self._fits:
                change = await asyncio.to_thread(knowledge.propose, policy.rules, self._clock.now())
            if change is None:
                return
            await store.append_change(source, change.to_json_dict())
        except Exception:  # tuning is an extra: the waits go on with the setting in force
            log.warning("Tuning %s failed; its setting stays", source, exc_info=True)
            return
        knowledge.changes = (*knowledge.changes, change)
        self._metrics.incr(metrics.ADAPTIVE_TUNED, tags)
        log.info("Tuned %s: %s", source, change.reason)

    async def knowledge(
        self, store: WaitStore, source: str, tags: dict[str, str]
    ) -> Knowledge | None:
        """Return ``source``'s knowledge, reading the history when it is stale; never raises."""
        key = (id(store), source)
        entry = self._known.get(key)
        if entry is not None and self._clock.now() < entry.until:
            if entry.failed:
                self._metrics.incr(metrics.ADAPTIVE_FALLBACKS, tags)
            return entry.knowledge
        task = self._reading.get(key)
        if task is None:
            task = asyncio.ensure_future(self._read(store, source, entry))
            self._reading[key] = task
            task.add_done_callback(lambda _: self._reading.pop(key, None))
        fresh = await asyncio.shield(task)
        self._known[key] = fresh
        if fresh.failed:
            self._metrics.incr(metrics.ADAPTIVE_FALLBACKS, tags)
        return fresh.knowledge

    async def _read(self, store: WaitStore, source: str, before: _Entry | None) -> _Entry:
        try:
            async with self._reads:
                knowledge = await store.scan(source, Knowledge.from_records)
        except Exception:  # fail open: the waits poll by their fallback policy
            if before is None or not before.failed:
                log.warning(
                    "The history of %s cannot be read; its waits poll by their fallback policy",
                    source,
                    exc_info=True,
                )
            return _Entry(None, self._clock.now() + RETRY_S, failed=True)
        return _Entry(knowledge, self._clock.now() + REFRESH_S)


async def _changes(store: WaitStore, source: str) -> tuple[Change, ...]:
    """Return ``source``'s change log as changes; damaged entries are skipped (warned)."""
    found = []
    for entry in await store.changes(source):
        try:
            found.append(Change.from_json_dict(entry))
        except ValueError as exc:
            log.warning("Skipping a damaged change of %s: %s", source, exc)
    return tuple(found)


async def _changes_or_none(store: WaitStore, source: str) -> tuple[Change, ...]:
    """Return ``source``'s change log, or none when it cannot be read (warned): untuned."""
    try:
        return await _changes(store, source)
    except Exception:
        log.warning("The change log of %s cannot be read; it plans untuned", source, exc_info=True)
        return ()


async def revert_tuning(
    store: WaitStore, source: str, policy: Adaptive, at: float | None = None
) -> Change:
    """Undo ``source``'s latest tuning and hold tuning until :func:`resume_tuning`.

    Waits that open after this use the setting in force before that tuning (within the
    triggerer's :data:`REFRESH_S`).  ``at``: when, epoch seconds (now).  Returns the change
    recorded.

    :raises ValueError: when nothing was tuned.
    """
    log_ = await _changes(store, source)
    own = Setting(policy.max_interval_s)
    change = reverted(log_, time.time() if at is None else at, policy.tune_every_s, own)
    await store.append_change(source, change.to_json_dict())
    return change


async def resume_tuning(
    store: WaitStore, source: str, policy: Adaptive, at: float | None = None
) -> Change:
    """Let ``source``'s tuning go on after :func:`revert_tuning`; returns the change recorded.

    :raises ValueError: when tuning is not held.
    """
    now = time.time() if at is None else at
    change = resumed(await _changes(store, source), now, policy.tune_every_s)
    await store.append_change(source, change.to_json_dict())
    return change


def _log_failure(work: asyncio.Future[Bound | None]) -> None:
    """Log what a plan that came too late failed with (its wait already polls by fallback)."""
    if not work.cancelled() and work.exception() is not None:
        log.warning("Planning a wait failed after its wait went on", exc_info=work.exception())
