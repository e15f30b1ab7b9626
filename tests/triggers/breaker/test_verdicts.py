"""Finished waits' outcomes reach the breaker in one update per tick, none if nothing changes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from waitwise.triggers.breaker import BreakerConfig, BreakerSnapshot, BreakerState
from waitwise.triggers.breaker.verdicts import Outcome, VerdictBatch
from waitwise.triggers.store import FileStore

T0 = 1_700_000_000.0
CONFIG = BreakerConfig(failure_threshold=3, window=4, min_calls=4, cooldown_s=60.0)


class Counting(FileStore):
    """A real file store that counts breaker updates and can hold them up."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.updates = 0
        self.gate: asyncio.Event | None = None

    async def update_breaker(self, source: str, fn: Any) -> BreakerSnapshot:
        self.updates += 1
        if self.gate is not None:
            await self.gate.wait()
        return await super().update_breaker(source, fn)


@pytest.fixture
def store(tmp_path: Path) -> Counting:
    return Counting(tmp_path / "store")


def outcome(ok: bool, at: float = T0) -> Outcome:
    return Outcome(CONFIG, ok, at)


async def test_a_thousand_endings_in_one_tick_make_one_update(store: Counting) -> None:
    batch = VerdictBatch(store, "feed")
    events = await asyncio.gather(*(batch.submit(outcome(i % 2 == 0)) for i in range(1000)))
    assert store.updates == 1
    assert events == [[]] * 1000
    snapshot = await store.get_breaker("feed")
    assert snapshot is not None
    assert (snapshot.outcomes, snapshot.consecutive_failures) == ((True, False) * 2, 1)


async def test_successes_that_change_nothing_write_nothing(store: Counting) -> None:
    batch = VerdictBatch(store, "feed")
    await asyncio.gather(*(batch.submit(outcome(True)) for _ in range(4)))  # fills the window
    assert store.updates == 1
    for _ in range(3):  # a healthy source: every later success leaves the breaker as it is
        await asyncio.gather(*(batch.submit(outcome(True)) for _ in range(10)))
    assert store.updates == 1
    assert batch.updates == 1


async def test_outcomes_apply_in_report_order_and_each_gets_its_events(store: Counting) -> None:
    batch = VerdictBatch(store, "feed")
    verdicts = [False, False, False, True]  # the third failure opens it
    events = await asyncio.gather(*(batch.submit(outcome(ok)) for ok in verdicts))
    assert [[type(e).__name__ for e in caused] for caused in events] == [
        [],
        [],
        ["BreakerOpened"],
        [],
    ]
    snapshot = await store.get_breaker("feed")
    assert snapshot is not None
    assert snapshot.state is BreakerState.OPEN


async def test_outcomes_reported_during_an_update_join_the_next_one(store: Counting) -> None:
    batch = VerdictBatch(store, "feed")
    store.gate = asyncio.Event()
    first = [asyncio.ensure_future(batch.submit(outcome(False))) for _ in range(2)]
    await asyncio.sleep(0.01)  # the first update is in flight, held at the gate
    later = [asyncio.ensure_future(batch.submit(outcome(False))) for _ in range(5)]
    await asyncio.sleep(0.01)
    store.gate.set()
    await asyncio.gather(*first, *later)
    assert store.updates == 2  # not 7
    snapshot = await store.get_breaker("feed")
    assert snapshot is not None
    assert snapshot.consecutive_failures == 7


async def test_a_failed_update_fails_its_batch_only(store: Counting) -> None:
    batch = VerdictBatch(store, "feed")
    broken = True
    real = store.update_breaker

    async def flaky(source: str, fn: Any) -> BreakerSnapshot:
        if broken:
            raise OSError(28, "No space left on device")
        return await real(source, fn)

    store.update_breaker = flaky  # type: ignore[method-assign]
    results = await asyncio.gather(
        *(batch.submit(outcome(False)) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, OSError) for r in results)
    broken = False
    assert await batch.submit(outcome(False)) == []
    snapshot = await store.get_breaker("feed")
    assert snapshot is not None
    assert snapshot.consecutive_failures == 1  # the failed batch wrote nothing
