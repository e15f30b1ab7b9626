from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from waitwise.triggers.store._locks import process_lock


def hold_in_thread(name: str) -> tuple[threading.Thread, threading.Event, threading.Event]:
    """Hold ``name`` from another thread and loop until ``release`` is set."""
    held, release = threading.Event(), threading.Event()

    async def hold() -> None:
        async with process_lock(name):
            held.set()
            await asyncio.to_thread(release.wait, 30)

    thread = threading.Thread(target=asyncio.run, args=(hold(),))
    thread.start()
    return thread, held, release


async def enter(name: str, inside: Callable[[], None] = lambda: None) -> str:
    async with process_lock(name):
        inside()
    return "entered"


async def test_a_loop_waits_for_another_threads_holder():
    thread, held, release = hold_in_thread("lock-a")
    await asyncio.to_thread(held.wait, 30)
    waiter = asyncio.create_task(enter("lock-a"))
    await asyncio.sleep(0)  # let the waiter reach its blocking acquire
    release.set()
    assert await asyncio.wait_for(waiter, timeout=30) == "entered"
    await asyncio.to_thread(thread.join, 30)


async def test_a_waiter_cancelled_in_its_thread_releases_what_it_acquires_later():
    thread, held, release = hold_in_thread("lock-b")
    await asyncio.to_thread(held.wait, 30)
    waiter = asyncio.create_task(enter("lock-b"))
    await asyncio.sleep(0)
    waiter.cancel()
    release.set()
    await asyncio.to_thread(thread.join, 30)
    results = await asyncio.gather(waiter, return_exceptions=True)
    assert [type(r) for r in results] == [asyncio.CancelledError]
    assert await asyncio.wait_for(enter("lock-b"), timeout=30) == "entered"
