"""Process-local per-name locks usable from any task, event loop and thread.

The registries are module state on purpose: every store instance in a process must
share them, or two instances would not exclude each other. Loop locks are held in a
``WeakKeyDictionary`` so they vanish with their loop (tests get fresh ones per loop);
thread locks live for the process, one per name (one per source in practice).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import AsyncIterator

_GUARD = threading.Lock()
_LOOP_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]]
_LOOP_LOCKS = weakref.WeakKeyDictionary()
_THREAD_LOCKS: dict[str, threading.Lock] = {}


def loop_lock(name: str) -> asyncio.Lock:
    """Return the running loop's lock for ``name``, creating it on first use."""
    loop = asyncio.get_running_loop()
    with _GUARD:
        return _LOOP_LOCKS.setdefault(loop, {}).setdefault(name, asyncio.Lock())


@contextlib.asynccontextmanager
async def process_lock(name: str) -> AsyncIterator[None]:
    """Hold ``name`` exclusively across every task, loop and thread of this process.

    Tasks of one loop queue on an :class:`asyncio.Lock`, so at most one thread per
    loop ever blocks on the process-wide :class:`threading.Lock`; the holder therefore
    never starves for executor threads. Cancellation while waiting is safe: a lock the
    worker thread acquires after the waiter is gone is released at once.
    """
    async with loop_lock(name):
        with _GUARD:
            lock = _THREAD_LOCKS.setdefault(name, threading.Lock())
        if not lock.acquire(blocking=False):
            await _acquire_in_thread(lock)
        try:
            yield
        finally:
            lock.release()


async def _acquire_in_thread(lock: threading.Lock) -> None:
    acquiring = asyncio.get_running_loop().run_in_executor(None, lock.acquire)
    try:
        await asyncio.shield(acquiring)
    except asyncio.CancelledError:
        acquiring.add_done_callback(lambda done: _release_if_acquired(lock, done))
        raise


def _release_if_acquired(lock: threading.Lock, done: asyncio.Future[bool]) -> None:
    if not done.cancelled() and done.exception() is None and done.result():
        lock.release()
