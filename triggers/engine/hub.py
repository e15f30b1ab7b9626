"""One poll scheduler per event loop for every waiting trigger, of every kind.

Why: a trigger that sleeps and pokes on its own wakes its task twice per poke (its timer, then
its check's result), each through Airflow's greenback shim, and costs a future, a timer and
often a thread hop of its own.  Measured in Airflow's runner (``make bench``) that was ~3x the
CPU per poke of Airflow's ``FileTrigger``.  Here a trigger registers its window once and awaits
one future; the hub keeps every due time in a heap, hands all queries due together to their
kind's prober in one batch (:mod:`waitwise.triggers.engine.probe`: one thread hop for every
file check due), advances not-found schedules itself with the same
:class:`~waitwise.triggers.policy.Schedule` arithmetic, counts pokes and probe errors with each
wait's tags, and wakes a trigger only when its wait ends (found, deadline, errors).

Isolation: a query whose check raises ends its own wait (:func:`probe_isolated`); the hub task
itself survives anything a prober does, so no other wait is left hanging.

Timing contract: a poke runs at its nominal time or up to ``TICK_S`` later (pokes due within a
tick share one thread hop); never earlier.  With a single trigger the hub sleeps exactly until
the next due poke, so schedules are exact.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import operator
from collections import deque
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from waitwise.triggers import metrics
from waitwise.triggers.clock import Clock
from waitwise.triggers.engine.probe import Prober, probe_isolated
from waitwise.triggers.engine.progress import (
    ProbeResult,
    Tally,
    decisions_logged,
    log_decision,
    settle_poke,
)
from waitwise.triggers.engine.sharing import Look, Pooling, Sharers
from waitwise.triggers.events import WaitStatus
from waitwise.triggers.metrics import MetricsSink
from waitwise.triggers.policy import Schedule

log = logging.getLogger(__name__)

TICK_S: Final = 0.05
WAKE_CHUNK: Final = 256
SLOW_BATCH_S: Final = 0.5
"""Real seconds the hub waits for a tick's batches; a slower one finishes in the background."""


@dataclass(slots=True)
class Watch:
    """One window of one wait, polled by the hub.

    :param query: what to check, as its kind's ``prober`` understands it.
    :param error_delay: seconds to wait after the n-th probe error in a row (the retry
        strategy's backoff); the hub ends the wait with ``ERROR`` past ``max_errors``.
    :param name: what the wait is for, in log lines.
    :param tags: the wait's metric tags (shared between waits with equal tags).
    """

    query: Any
    prober: Prober
    schedule: Schedule
    closes_at: float
    tally: Tally
    future: asyncio.Future[WaitStatus]
    error_delay: Callable[[int], float]
    max_errors: int
    name: str
    tags: dict[str, str]
    due: float = field(default=0.0)
    gen: int = field(default=0)  # bumped when moved earlier: older heap and lane places are void
    in_flight: bool = field(default=False)  # being probed: a wake-up counts after its settle
    woken: bool = field(default=False)  # an event came in flight: poke again at once
    share: tuple[Hashable, ...] = field(default=())  # what its check reads (sharing.Pooling)


class PollHub:
    """The per-loop scheduler (see the module docstring).

    Due times live in a heap, except for windows in a flat tail (a constant interval from
    now on, see :class:`~waitwise.triggers.policy.Schedule`): those wait in one FIFO
    lane per interval.  A lane stays sorted because an entry joins it only if it is due no
    earlier than the lane's last entry (anything else goes to the heap), so the steady
    state costs an append and a pop per poke instead of two heap operations.
    """

    def __init__(self, clock: Clock, sink: MetricsSink) -> None:
        self.clock, self.sink = clock, sink
        self._heap: list[tuple[float, int, int, Watch]] = []
        self._lanes: dict[float, deque[tuple[float, int, Watch]]] = {}
        self._seq = itertools.count()
        self._task: asyncio.Task[None] | None = None
        self._sleeper: asyncio.Future[None] | None = None
        self._wake_at = 0.0
        self._urgent = False  # a wait woken while probed is due again: no tick pause
        self._sharers = Sharers()
        self._busy: dict[int, asyncio.Task[None]] = {}  # prober id -> its batch still out
        self._parked: dict[int, list[Watch]] = {}  # due while their prober was busy
        self.batches = 0
        self.looks_found = 0

    def watch(self, entry: Watch) -> None:
        """Poll ``entry`` from ``entry.due`` on; its future carries the outcome."""
        if isinstance(entry.prober, Pooling):
            entry.share = entry.prober.share_keys(entry.query)
            self._sharers.add(entry, entry.share)
        self._push(entry)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        elif self._sleeper is not None and entry.due < self._wake_at:
            self._sleeper.cancel()  # due before the hub would wake: wake it now

    def _push(self, entry: Watch) -> None:
        flat = entry.schedule.flat
        if flat is not None and entry.tally.errors_in_row == 0:
            lane = self._lanes.get(flat)
            if lane is None:
                lane = self._lanes[flat] = deque()
            if not lane or lane[-1][0] <= entry.due:
                lane.append((entry.due, entry.gen, entry))
                return
        heapq.heappush(self._heap, (entry.due, next(self._seq), entry.gen, entry))

    def expedite(self, entry: Watch) -> None:
        """Poke ``entry`` now: its data may have landed (an inotify event, say).

        Its schedule is untouched (the next nominal poke comes as before); a wait in its
        probe-error backoff keeps its backoff; a wait being probed right now is poked again
        right after (the probe may have looked before the data landed).
        """
        if entry.future.done() or entry.tally.errors_in_row:
            return
        if entry.in_flight:
            entry.woken = True
            return
        now = self.clock.now()
        if entry.due <= now:
            return  # due already: the hub takes it at its next tick
        entry.gen += 1
        entry.due = now
        heapq.heappush(self._heap, (now, next(self._seq), entry.gen, entry))
        self._urgent = True  # no tick pause before it, should the hub be busy right now
        if self._sleeper is not None:
            self._sleeper.cancel()
        elif self._task is None or self._task.done():  # defensive: the hub has stopped
            self._task = asyncio.get_running_loop().create_task(self._run())

    def _next_due(self) -> float | None:
        heads = [lane[0][0] for lane in self._lanes.values() if lane]
        if self._heap:
            heads.append(self._heap[0][0])
        return min(heads, default=None)

    def _waiting(self) -> int:
        return len(self._heap) + sum(len(lane) for lane in self._lanes.values())

    async def _nap(self, seconds: float) -> None:
        self._wake_at = self.clock.now() + seconds
        self._sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        try:
            await asyncio.wait([self._sleeper])
        finally:
            with contextlib.suppress(RuntimeError):  # the loop closed under a napping hub
                self._sleeper.cancel()
            self._sleeper = None

    async def _run(self) -> None:
        while (next_due := self._next_due()) is not None:
            due = self._pop_due(self.clock.now())
            if due:
                self.batches += 1
                launched = [self._launch(group) for group in self._groups(due)]
                if launched:  # a kind slower than SLOW_BATCH_S goes on in the background
                    await asyncio.wait(launched, timeout=SLOW_BATCH_S)
                next_due = self._next_due()
            if next_due is not None:
                await self._nap(self._pause(next_due, bool(due)))

    def _groups(self, due: list[Watch]) -> list[list[Watch]]:
        """Split ``due`` by prober; park the waits of a prober whose last batch is still out."""
        groups: dict[int, list[Watch]] = {}
        for entry in due:
            groups.setdefault(id(entry.prober), []).append(entry)
        ready = []
        for key, group in groups.items():
            if key in self._busy:
                self._parked.setdefault(key, []).extend(group)
            else:
                ready.append(group)
        return ready

    def _launch(self, group: list[Watch]) -> asyncio.Task[None]:
        """Probe and settle one kind's batch as a task of its own (see :data:`SLOW_BATCH_S`)."""
        key = id(group[0].prober)
        task = asyncio.get_running_loop().create_task(self._batch(group))
        self._busy[key] = task
        task.add_done_callback(lambda _: self._batch_done(key))
        return task

    async def _batch(self, due: list[Watch]) -> None:
        try:
            shared = self._sharers.shared(due) if self._sharers else set()
            results, changed = await _probe(due, shared)
            now = self.clock.now()
            await self._settle(due, results, now)
            if changed:  # free looks for the waits on what changed (:mod:`.sharing`)
                looks = self._sharers.others(changed, due)
                if looks:  # answered from the same listings: seen at the same time
                    seen = await _look(due[0].prober, looks, changed)
                    await self._settle_looks(looks, seen, now)
        except Exception as exc:  # a bug in settling: end this batch's waits, go on
            log.exception("Settling a batch of %d waits failed", len(due))
            for entry in due:
                entry.in_flight = False
                if not entry.future.done():
                    entry.future.set_exception(exc)

    def _batch_done(self, key: int) -> None:
        """Free the prober; its parked waits are due at once; wake the hub for them."""
        self._busy.pop(key, None)
        parked = self._parked.pop(key, [])
        now = self.clock.now()
        for entry in parked:
            entry.in_flight = False
            if not entry.future.done():
                entry.due = min(entry.due, now)
                self._push(entry)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        elif parked and self._sleeper is not None:
            self._sleeper.cancel()

    def _pause(self, next_due: float, polled: bool) -> float:
        if self._urgent:
            self._urgent = False
            return 0.001
        wait = next_due - self.clock.now()
        return max(wait, TICK_S if polled and self._waiting() > 1 else 0.0, 0.001)

    def _pop_due(self, now: float) -> list[Watch]:
        due = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, gen, entry = heapq.heappop(heap)
            if gen == entry.gen:
                due.append(entry)
        for flat, lane in list(self._lanes.items()):
            while lane and lane[0][0] <= now:
                _, gen, entry = lane.popleft()
                if gen == entry.gen:
                    due.append(entry)
            if not lane:
                del self._lanes[flat]  # intervals come and go: keep only the lanes in use
        # Settled in due order, each flat entry's next time is no earlier than the one before
        # it (a nominal time plus the same interval), so it can join the end of its lane.
        due.sort(key=_by_due)
        due = [entry for entry in due if not entry.future.done()]  # cancelled: its future too
        for entry in due:
            entry.in_flight = True
        return due

    async def _settle(self, due: list[Watch], results: Sequence[ProbeResult], now: float) -> None:
        woken = 0
        self._count(due)
        debug = decisions_logged()  # once per batch: free when switched off
        for entry, result in zip(due, results, strict=True):
            entry.in_flight = False
            if entry.future.done():
                continue
            if isinstance(result, BaseException):
                self.sink.incr(metrics.PROBE_ERRORS, entry.tags)
            try:
                status = _apply(entry, result, now)
            except Exception as exc:  # e.g. a policy that raises: ends this wait alone
                entry.future.set_exception(exc)
                continue
            if status is None:
                self._requeue(entry, now, debug)
                continue
            entry.future.set_result(status)
            woken += 1
            if woken % WAKE_CHUNK == 0:  # wake a big landing in chunks: no long loop stall
                await asyncio.sleep(0)

    async def _settle_looks(self, looks: list[Watch], seen: Sequence[Look], now: float) -> None:
        """End the waits whose data a look found (:mod:`.sharing`); leave the others be."""
        hits = [
            (entry, result)
            for entry, result in zip(looks, seen, strict=True)
            if isinstance(result, list) and result and not entry.future.done()
        ]
        for entry, result in hits:
            entry.gen += 1  # its place in the heap or lane is void now
            self.sink.incr(metrics.POKES, entry.tags)
            try:
                status = _apply(entry, result, now)
            except Exception as exc:  # a policy that raises: ends this wait alone
                entry.future.set_exception(exc)
                continue
            self.looks_found += 1
            entry.future.set_result(status or WaitStatus.SUCCESS)
        if hits:
            await asyncio.sleep(0)

    def _requeue(self, entry: Watch, now: float, debug: bool) -> None:
        """Put a wait that goes on back in line (at once if an event came while probed)."""
        if entry.woken:
            entry.woken = False
            entry.due = min(entry.due, now)
            self._urgent = True
        if debug:
            delay = entry.due - now
            log_decision(entry.name, entry.tally, entry.schedule, entry.closes_at, delay)
        self._push(entry)

    def _count(self, due: list[Watch]) -> None:
        """Count one poke per wait, one metric per distinct tag set in the batch."""
        counts: dict[int, int] = {}
        tags: dict[int, dict[str, str]] = {}
        for entry in due:
            key = id(entry.tags)
            if key in counts:
                counts[key] += 1
            else:
                counts[key], tags[key] = 1, entry.tags
        for key, count in counts.items():
            self.sink.incr(metrics.POKES, tags[key], count)


async def _probe(
    due: list[Watch], shared: set[Hashable]
) -> tuple[Sequence[ProbeResult], Mapping[Hashable, Any]]:
    """Check one kind's due queries; return their results and the shared keys that changed."""
    prober = due[0].prober
    queries = [entry.query for entry in due]
    if shared and isinstance(prober, Pooling):
        try:
            results, changed = await prober.probe_pooled(queries, shared)
            if len(results) == len(due):
                return results, {key: seen for key, seen in changed.items() if key in shared}
            log.error("%s answered %d results for %d queries", prober, len(results), len(due))
        except Exception:  # isolation first: probe the due waits the usual way
            log.exception("%s failed a pooled batch; checking without looks", prober)
    return await probe_isolated(prober, queries), {}


async def _look(
    prober: Prober, looks: list[Watch], changed: Mapping[Hashable, Any]
) -> Sequence[Look]:
    """Return what ``prober`` shows for waits not due (``None`` each if it cannot say)."""
    try:
        if isinstance(prober, Pooling):
            seen = await prober.look([entry.query for entry in looks], changed)
            if len(seen) == len(looks):
                return seen
    except Exception:  # a look is a bonus: the waits' own pokes go on
        log.exception("%s failed a look at %d waits", prober, len(looks))
    return [None] * len(looks)


def _apply(entry: Watch, result: ProbeResult, now: float) -> WaitStatus | None:
    """Update ``entry`` with one poke's result; return how the wait ends, or ``None``."""
    outcome = settle_poke(
        entry.tally,
        result,
        now,
        schedule=entry.schedule,
        closes_at=entry.closes_at,
        error_delay=entry.error_delay,
        max_errors=entry.max_errors,
        name=entry.name,
    )
    if isinstance(outcome, WaitStatus):
        return outcome
    entry.due = now + outcome
    return None


_by_due = operator.attrgetter("due")
