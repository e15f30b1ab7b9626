"""Work of many waits done together: tick batches, and breaker reads shared per tick."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest

from waitwise.triggers.breaker import BreakerConfig, BreakerSnapshot
from waitwise.triggers.engine.tick import PerLoop, SharedReads, TickBatch, shared_reads
from waitwise.triggers.engine.wait import Wait
from waitwise.triggers.policy import Constant
from waitwise.triggers.runtime import Runtime
from waitwise.triggers.spec import WaitSpec
from waitwise.triggers.store import FileStore
from waitwise.triggers.testing import FakeClock, RecordingSink

T0 = 1_700_000_000.0


class Flushes:
    """A flush that records its batches; a batch holding "bad" fails; "slow" waits for ``gate``."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.gate = asyncio.Event()

    async def __call__(self, items: list[str]) -> list[str]:
        self.batches.append(items)
        if "slow" in items:
            await self.gate.wait()
        if "bad" in items:
            raise OSError("store down")
        return [item.upper() for item in items]


async def test_one_tick_is_one_flush_in_submission_order() -> None:
    flush = Flushes()
    batch = TickBatch(flush)

    results = await asyncio.gather(*(batch.submit(x) for x in ["a", "b", "c"]))

    assert results == ["A", "B", "C"]
    assert flush.batches == [["a", "b", "c"]]


async def test_what_arrives_during_a_flush_waits_for_the_next_one() -> None:
    flush = Flushes()
    batch = TickBatch(flush)
    first = asyncio.ensure_future(batch.submit("slow"))
    await asyncio.sleep(0)
    await asyncio.sleep(0)  # the flush of "slow" is in flight
    later = [asyncio.ensure_future(batch.submit(x)) for x in ["d", "e"]]
    await asyncio.sleep(0)
    flush.gate.set()

    assert await asyncio.gather(first, *later) == ["SLOW", "D", "E"]
    assert flush.batches == [["slow"], ["d", "e"]]


async def test_a_failed_flush_fails_its_batch_only() -> None:
    flush = Flushes()
    flush.gate.set()
    batch = TickBatch(flush)
    failed = asyncio.gather(batch.submit("bad"), batch.submit("x"), return_exceptions=True)
    outcomes = await failed

    assert [type(o) for o in outcomes] == [OSError, OSError]
    assert await batch.submit("y") == "Y"
    assert flush.batches == [["bad", "x"], ["y"]]


class CountingStore(FileStore):
    """A file store counting its breaker reads.

    With ``gate`` set up, a read returns only once the gate opens, after it has read
    (``read``): a round trip whose answer is on its way back.
    """

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.reads = 0
        self.gate: asyncio.Event | None = None
        self.read = asyncio.Event()
        self.failures = 0

    async def get_breaker(self, source: str) -> BreakerSnapshot | None:
        self.reads += 1
        if self.failures:
            self.failures -= 1
            raise ConnectionError("api-server unreachable")
        value = await super().get_breaker(source)
        self.read.set()
        if self.gate is not None:
            await self.gate.wait()
        return value


def opened(_stored: BreakerSnapshot | None) -> BreakerSnapshot:
    return BreakerSnapshot("src", consecutive_failures=7)


@pytest.fixture
def store(tmp_path: Path) -> CountingStore:
    return CountingStore(tmp_path)


async def test_reads_asked_in_one_tick_are_one_read(store: CountingStore) -> None:
    await store.update_breaker("src", opened)
    reads = SharedReads(store)

    snapshots = await asyncio.gather(*(reads.get_breaker("src") for _ in range(100)))

    assert store.reads == 1
    assert {s.consecutive_failures for s in snapshots if s is not None} == {7}
    assert len([s for s in snapshots if s is not None]) == 100


async def test_each_source_is_read_once(store: CountingStore) -> None:
    reads = SharedReads(store)

    snapshots = await asyncio.gather(*(reads.get_breaker(s) for s in ["a", "b", "a", "b"]))

    assert store.reads == 2
    assert snapshots == [None] * 4


async def test_a_read_asked_during_a_read_sees_a_write_made_meanwhile(
    store: CountingStore,
) -> None:
    reads = SharedReads(store)
    store.gate = asyncio.Event()
    early = asyncio.ensure_future(reads.get_breaker("src"))
    await store.read.wait()  # the first read has read; its answer is on its way
    await store.update_breaker("src", opened)
    late = asyncio.ensure_future(reads.get_breaker("src"))  # asked after the write
    await asyncio.sleep(0)
    store.gate.set()

    assert await early is None
    snapshot = await late
    assert snapshot is not None
    assert snapshot.consecutive_failures == 7
    assert store.reads == 2


async def test_a_failed_read_fails_its_callers_and_the_next_tick_reads_again(
    store: CountingStore,
) -> None:
    store.failures = 1
    reads = SharedReads(store)

    failed = await asyncio.gather(
        reads.get_breaker("src"), reads.get_breaker("src"), return_exceptions=True
    )

    assert [type(f) for f in failed] == [ConnectionError, ConnectionError]
    assert await reads.get_breaker("src") is None
    assert store.reads == 2


async def test_every_other_call_goes_to_the_store(store: CountingStore) -> None:
    reads = shared_reads(store)

    stored = await reads.update_breaker("src", opened)

    assert stored.version == 1
    assert await reads.sources() == ["src"]
    assert (await store.get_breaker("src")) == stored


async def test_one_shared_reads_per_store_and_loop(store: CountingStore, tmp_path: Path) -> None:
    other = FileStore(tmp_path / "other")

    assert shared_reads(store) is shared_reads(store)
    assert shared_reads(other) is not shared_reads(store)


def test_per_loop_values_are_per_loop_and_reset() -> None:
    values: PerLoop[list[int]] = PerLoop(list)

    async def mine() -> list[int]:
        found = values.get()
        assert found is values.get()
        return found

    first, second = asyncio.run(mine()), asyncio.run(mine())

    assert first is not second
    values.reset()
    with pytest.raises(RuntimeError):
        values.get()  # outside a running loop


def admitting_wait(store: FileStore, task_id: str) -> Wait:
    spec = WaitSpec(
        poll=Constant(interval=1.0),
        timeout=60.0,
        started_at=T0,
        source="src",
        breaker=BreakerConfig(failure_threshold=5, window=20, cooldown_s=60.0),
    )
    task = SimpleNamespace(dag_id="d", task_id=task_id, run_id="r", map_index=-1, try_number=1)
    runtime = Runtime(clock=FakeClock(now_s=T0), metrics=RecordingSink(), store=store)
    return Wait(spec, None, None, task_id, "Test", task_id, task, runtime)  # type: ignore[arg-type]


async def test_waits_starting_together_read_the_breaker_once(store: CountingStore) -> None:
    waits = [admitting_wait(store, f"t{i}") for i in range(50)]

    rejections = await asyncio.gather(*(wait._admit() for wait in waits))

    assert rejections == [None] * 50  # a closed breaker admits every wait
    assert store.reads == 1
    ledgers = {id(wait.ledger.store) for wait in waits if wait.ledger is not None}
    assert len(ledgers) == 1  # one store object: the source's record batches stay shared
