"""Work of many waits that arrives together, done together: one flush per event-loop tick.

When the files of many waits land at once, their endings reach shared state (a source's
history, its breaker) in the same tick.  :class:`TickBatch` gathers what is submitted in one
tick, and whatever arrives while a flush is in flight, and hands it to one flush call, in
submission order; every submitter gets its own item's result, or the flush's exception.

When many waits of a source start at once, each asks the source's breaker for admission.
:class:`SharedReads` makes those reads one read per tick (:func:`shared_reads`).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

if TYPE_CHECKING:
    from waitwise.triggers.breaker import BreakerSnapshot
    from waitwise.triggers.store import WaitStore

T = TypeVar("T")
R = TypeVar("R")


class TickBatch(Generic[T, R]):
    """Batches ``submit`` calls into ``flush`` calls (one at a time, in submission order).

    Every flush starts after the calls of its batch were made: an item submitted while a
    flush is in flight waits for the next one.

    :param flush: takes the items of one batch and returns one result per item, in order.
    """

    def __init__(self, flush: Callable[[list[T]], Awaitable[list[R]]]) -> None:
        self._flush_items = flush
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        """Add ``item`` to the next flush; return its result (or raise the flush's error)."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._pending:
            await asyncio.sleep(0)  # let the submissions of this tick join
            batch, self._pending = self._pending, []
            try:
                results = await self._flush_items([item for item, _future in batch])
            except Exception as exc:  # every submitter of this batch learns it; the next goes on
                for _item, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_item, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)


class PerLoop(Generic[T]):
    """One value per running event loop, made by ``make`` on first use.

    The values live as long as their loop (weak keys): tests, each on a fresh loop, get
    fresh ones; :meth:`reset` drops them all.
    """

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._values: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T]
        self._values = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def get(self) -> T:
        """Return the running loop's value (``RuntimeError`` outside a running loop)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            found = self._values.get(loop)
            if found is None:
                found = self._values[loop] = self._make()
            return found

    def reset(self) -> None:
        """Forget every loop's value."""
        with self._lock:
            self._values.clear()


class SharedReads:
    """A store whose breaker reads asked in one tick are one read per source.

    Why: when 1,000 sensors of a source start together, each reads the breaker to be
    admitted.  With Airflow Variables a read is a round trip to the triggerer's parent in a
    worker thread; 1,000 of them kept the default executor's few threads busy for tens of
    seconds (measured: 9 to 29 s per read), and the file checks of the waits already polling
    queued behind them.  Here the reads asked in one tick, and while a read of the source is
    in flight, are made once (:class:`TickBatch`): each caller's read is still made after
    its call, so it sees every write that completed before it asked.  A failed read fails
    each caller of its batch (each admits its wait, as on any breaker read error).

    Every other call goes to ``store`` unchanged.
    """

    def __init__(self, store: WaitStore) -> None:
        self.store = store
        self._reads: dict[str, TickBatch[None, BreakerSnapshot | None]] = {}

    async def get_breaker(self, source: str) -> BreakerSnapshot | None:
        """Return the stored breaker snapshot, read once for the callers of this tick."""
        batch = self._reads.get(source)
        if batch is None:

            async def read(callers: list[None]) -> list[BreakerSnapshot | None]:
                return [await self.store.get_breaker(source)] * len(callers)

            batch = self._reads[source] = TickBatch(read)
        return await batch.submit(None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


_SHARED: PerLoop[dict[int, tuple[object, SharedReads]]] = PerLoop(dict)


def shared_reads(store: WaitStore) -> WaitStore:
    """Return the running loop's :class:`SharedReads` over ``store`` (one per store and loop).

    One per store, so that whatever is keyed by the store (the source's record and verdict
    batches) stays shared by every wait of the loop.
    """
    table = _SHARED.get()
    owner, found = table.get(id(store), (None, None))
    if owner is not store or found is None:  # ids of dead stores can come back
        found = SharedReads(store)
        table[id(store)] = (store, found)
    # Structurally a WaitStore: get_breaker here, the rest through __getattr__.
    return cast("WaitStore", found)
