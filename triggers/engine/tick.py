"""Work of many waits that arrives together, done together: one flush per event-loop tick.

When the files of many waits land at once, their endings reach shared state (a source's
history, its breaker) in the same tick.  :class:`TickBatch` gathers what is submitted in one
tick, and whatever arrives while a flush is in flight, and hands it to one flush call, in
submission order; every submitter gets its own item's result, or the flush's exception.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class TickBatch(Generic[T, R]):
    """Batches ``submit`` calls into ``flush`` calls (one at a time, in submission order).

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
