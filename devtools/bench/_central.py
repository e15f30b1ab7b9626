"""Prototype, benchmark only: one scheduler per loop polls every waiting file; triggers sleep.

Measures the design proposed for ``triggers/base.py`` + ``_fsbatch.py``: today every poke
wakes the trigger's task twice (its timer, then its batch result), each time through
Airflow's greenback shim, and allocates a future and a timer.  Here a trigger registers its
query and schedule once and awaits one future; a per-loop scheduler keeps all due times in a
heap, checks every query due within a tick in one worker-thread batch, advances not-found
schedules itself (same ``Schedule`` arithmetic) and wakes a trigger only when its file is
found or its window closes.  Gaps, marked here and not needed to measure the hot path:
per-poke metrics (would be one ``incr`` per batch), probe errors (fall back to the
per-trigger loop), the per-poke DEBUG line.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

from waitwise.triggers import _fsbatch
from waitwise.triggers._progress import Schedule, Tally
from waitwise.triggers.errors import ProbeError
from waitwise.triggers.events import WaitStatus
from waitwise.triggers.file import FileArrivalTrigger

TICK_S = 0.05  # a poke may run up to one tick late: the price of sharing thread hops
WAKE_CHUNK = 256  # triggers woken per loop iteration


@dataclass(slots=True)
class _Watch:
    query: _fsbatch.FileQuery
    schedule: Schedule
    closes_at: float
    tally: Tally
    future: asyncio.Future[WaitStatus]
    due: float = field(default=0.0)


class _Scheduler:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Watch]] = []
        self._seq = itertools.count()
        self._task: asyncio.Task[None] | None = None

    def watch(self, entry: _Watch) -> None:
        heapq.heappush(self._heap, (entry.due, next(self._seq), entry))
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while self._heap:
            due = self._pop_due(time.time())
            if due:
                results = await asyncio.to_thread(_fsbatch.check_all, [w.query for w in due])
                await self._settle(due, results)
            await asyncio.sleep(TICK_S)

    def _pop_due(self, now: float) -> list[_Watch]:
        due = []
        while self._heap and self._heap[0][0] <= now:
            entry = heapq.heappop(self._heap)[2]
            if not entry.future.done():  # a cancelled trigger cancelled its future
                due.append(entry)
        return due

    async def _settle(self, due: list[_Watch], results: dict[Any, Any]) -> None:
        now, woken = time.time(), 0
        for entry in due:
            if entry.future.done():
                continue
            result, tally = results[entry.query], entry.tally
            tally.pokes += 1
            if isinstance(result, OSError):
                entry.future.set_exception(ProbeError(str(result)))
            elif result:
                tally.found, tally.first_seen_at = result, now
                entry.future.set_result(WaitStatus.SUCCESS)
            elif now >= entry.closes_at:
                entry.future.set_result(WaitStatus.TIMEOUT)
            else:
                entry.due = now + entry.schedule.delay_until_next(now, entry.closes_at)
                heapq.heappush(self._heap, (entry.due, next(self._seq), entry))
                continue
            woken += 1
            if woken % WAKE_CHUNK == 0:
                await asyncio.sleep(0)


_SCHEDULERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Scheduler] = (
    weakref.WeakKeyDictionary()
)


def scheduler() -> _Scheduler:
    loop = asyncio.get_running_loop()
    if loop not in _SCHEDULERS:
        _SCHEDULERS[loop] = _Scheduler()
    return _SCHEDULERS[loop]


class CentralFileArrivalTrigger(FileArrivalTrigger):
    """FileArrivalTrigger whose window is polled by the loop's scheduler (prototype)."""

    async def _poll_window(self, window: Any, tally: Tally, rt: Any) -> WaitStatus:
        assert self._query is not None
        key = self.seed_key() + (f"#w{window.index}" if window.index else "")
        now = rt.clock.now()
        schedule = Schedule.resumed(self.policy, key, window.opens_at, now)
        future: asyncio.Future[WaitStatus] = asyncio.get_running_loop().create_future()
        scheduler().watch(_Watch(self._query, schedule, window.closes_at, tally, future, now))
        try:
            return await future
        except ProbeError:  # prototype: errors go back to the per-trigger loop
            return await super()._poll_window(window, tally, rt)
