"""The WaitStore contract, run against both backends (FileStore, AirflowStore)."""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from waitwise.triggers.breaker import BreakerSnapshot, BreakerState
from waitwise.triggers.store import (
    StoreError,
    WaitOutcome,
    WaitRecord,
    WaitRecordError,
    WaitStore,
)

from .fakes import (
    NOW,
    SRC,
    T0,
    bump,
    hammer,
    hammer_in_process,
    make_record,
    open_store,
)


def run_ids(records: list[WaitRecord]) -> list[str]:
    return [record.run_id for record in records]


def test_both_backends_implement_the_protocol(store):
    assert isinstance(store, WaitStore)


async def test_unknown_source_is_empty(store):
    assert (await store.history(SRC), await store.get_breaker(SRC)) == ([], None)


async def test_history_is_newest_last_by_end_time(store):
    for i in (3, 1, 2):
        await store.append(make_record(i))
    assert run_ids(await store.history(SRC)) == ["run-1", "run-2", "run-3"]


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        (None, ["run-0", "run-1", "run-2"]),
        (2, ["run-1", "run-2"]),
        (0, []),
        (9, ["run-0", "run-1", "run-2"]),
    ],
)
async def test_history_limit_keeps_the_newest(store, limit, expected):
    for i in range(3):
        await store.append(make_record(i))
    assert run_ids(await store.history(SRC, limit)) == expected


async def test_history_round_trips_every_field(store):
    record = make_record(
        1,
        outcome=WaitOutcome.TIMEOUT,
        detected_at=None,
        error_count=2,
        last_error_kind="OSError",
    )
    await store.append(record)
    assert await store.history(SRC) == [record]


async def test_a_wait_recorded_twice_appears_once_with_the_later_content(store):
    first = make_record(1, pokes=3)
    second = replace(first, pokes=4, ended_at=first.ended_at + 1)  # the trigger's rerun
    await store.append(first)
    await store.append(second)
    await store.append(second)
    assert await store.history(SRC) == [second]


async def test_the_newest_ended_at_wins_whatever_the_write_order(store):
    later = make_record(1, ended_at=make_record(2).ended_at, pokes=9)
    await store.append(later)
    await store.append(make_record(1))
    await store.append(make_record(1, ended_at=later.ended_at, pokes=1))  # tie: bigger JSON
    assert await store.history(SRC) == [later]


async def test_waits_appended_together_read_and_compact_as_appended_alone(store):
    together = [make_record(i, ended_at=T0 + 40_000.0 * i) for i in range(6)]  # several days
    await store.append_many(together[:1])
    await store.append_many(together[1:])
    await store.append_many([replace(together[2], pokes=7, ended_at=together[2].ended_at + 1)])
    await store.append_many([])
    newer = replace(together[2], pokes=7, ended_at=together[2].ended_at + 1)
    expected = [*together[:2], newer, *together[3:]]
    assert await store.history(SRC) == expected
    await store.compact(SRC)
    assert await store.history(SRC) == expected


async def test_append_many_rejects_records_of_two_sources(store):
    with pytest.raises(TypeError, match="one source"):
        await store.append_many([make_record(1), replace(make_record(2), source="other")])


async def test_compaction_keeps_every_wait_once(store):
    records = [make_record(i, ended_at=T0 + 5_000.0 * i) for i in range(40)]
    for record in records:
        await store.append(record)
        await store.append(replace(record, pokes=0, ended_at=record.ended_at - 1))
    before = await store.history(SRC)
    await store.compact(SRC)
    await store.append(records[0])
    assert (before, await store.history(SRC)) == (records, records)


async def test_compaction_drops_waits_older_than_max_age(make_store):
    store = make_store(max_age_s=3 * 86_400.0)
    for day in range(10):
        await store.append(make_record(day, ended_at=T0 + day * 86_400.0))
    await store.compact(SRC)
    assert run_ids(await store.history(SRC)) == [f"run-{day}" for day in range(7, 10)]


async def test_another_try_is_another_wait(store):
    await store.append(make_record(1))
    await store.append(make_record(1, try_number=2, ended_at=make_record(2).ended_at))
    assert [r.try_number for r in await store.history(SRC)] == [1, 2]


async def test_retention_keeps_the_newest_waits_per_source(make_store):
    store = make_store(retention=3)
    for i in (5, 1, 4, 2, 3):
        await store.append(make_record(i))
    await store.append(make_record(1, source="partner"))
    assert (
        run_ids(await store.history(SRC)),
        run_ids(await store.history("partner")),
    ) == (
        ["run-3", "run-4", "run-5"],
        ["run-1"],
    )


async def test_sources_lists_history_and_breakers(store):
    await store.append(make_record(1, source="partner"))
    await store.update_breaker("finance", bump)
    assert await store.sources() == ["finance", "partner"]


async def test_update_breaker_bumps_the_version_and_sees_the_last_write(store):
    seen = []

    def trip(snapshot):
        seen.append(snapshot)
        return replace(bump(snapshot), state=BreakerState.OPEN, opened_at=1.0)

    first = await store.update_breaker(SRC, bump)
    second = await store.update_breaker(SRC, trip)
    assert (first.version, second.version, seen, await store.get_breaker(SRC)) == (
        1,
        2,
        [first],
        second,
    )


async def test_update_breaker_rejects_a_snapshot_of_another_source(store):
    with pytest.raises(StoreError, match="breaker update for 'finance' must return its snapshot"):
        await store.update_breaker(SRC, lambda _: BreakerSnapshot("partner"))


@pytest.mark.parametrize("source", ["../etc", "a/b", ".hidden", "", "x" * 101])
async def test_unsafe_source_names_are_rejected(store, source):
    with pytest.raises(WaitRecordError, match="source must match"):
        await store.history(source)
    with pytest.raises(WaitRecordError, match="source must match"):
        await store.update_breaker(source, bump)


@pytest.mark.parametrize("limit", [-1, 1.5, "3", True])
async def test_invalid_limit_is_rejected(store, limit):
    with pytest.raises(ValueError, match="limit must be None or an int >= 0"):
        await store.history(SRC, limit)


@pytest.mark.parametrize("retention", [0, -3, 2.0, None])
def test_invalid_retention_is_rejected(make_store, retention):
    with pytest.raises(ValueError, match="retention must be an int >= 1"):
        make_store(retention=retention)


async def test_append_rejects_non_records(store):
    with pytest.raises(TypeError, match="record must be a WaitRecord"):
        await store.append({"source": SRC})


# --- real concurrency: nothing lost, counters exact ---------------------------


def counted(n: int) -> BreakerSnapshot:
    return BreakerSnapshot(SRC, consecutive_failures=n, version=n)


async def test_concurrent_tasks_in_one_loop_lose_nothing(store):
    await asyncio.gather(*(hammer(store, worker, 10) for worker in range(10)))
    records = await store.history(SRC)
    assert (len(records), await store.get_breaker(SRC)) == (100, counted(100))


def test_threads_with_their_own_loops_lose_nothing(store):
    threads = [
        threading.Thread(target=asyncio.run, args=(hammer(store, worker, 25),))
        for worker in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    records = asyncio.run(store.history(SRC))
    assert (len(records), asyncio.run(store.get_breaker(SRC))) == (100, counted(100))


def run_processes(kind: str, root: Path, workers: int = 4, count: int = 50) -> list[int | None]:
    spawn = multiprocessing.get_context("spawn")
    procs = [
        spawn.Process(target=hammer_in_process, args=(kind, str(root), worker, count))
        for worker in range(workers)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=90)
    return [proc.exitcode for proc in procs]


@pytest.mark.parametrize("kind", ["file", "airflow"])
def test_processes_lose_no_record_and_no_breaker_update(tmp_path, kind):
    """4 processes x 50 waits (each written twice) and 50 breaker updates on one source,
    compacting as they go (:func:`fakes.hammer`).

    FileStore is exact by flock. AirflowStore appends and compactions lose nothing by
    construction (write-once keys, see kv_compaction.py) and its breaker is exact while
    rivals' read-to-write gaps stay under settle_s (see kv.py); the fake's gaps are
    ~1 ms against a 50 ms settle_s. Every wait is read once, with its newest content.
    """
    exits = run_processes(kind, tmp_path)
    store = open_store(kind, tmp_path)
    asyncio.run(store.compact(SRC))
    records = asyncio.run(store.history(SRC))
    snapshot = asyncio.run(store.get_breaker(SRC))
    expected = {f"run-{w * 10_000 + i}" for w in range(4) for i in range(50)}
    assert (exits, set(run_ids(records)), len(records), snapshot) == (
        [0, 0, 0, 0],
        expected,
        200,
        counted(200),
    )
    assert {record.pokes for record in records} == {4}


async def test_how_a_wait_ended_beats_a_later_cancellation_of_the_same_try(store):
    # a trigger taken over by another triggerer is cancelled in the first one (Airflow sends
    # that as a user action: on_kill records "cancelled") while the second one ends the wait
    ended = make_record(1, outcome=WaitOutcome.SKIPPED)
    cancelled = replace(ended, outcome=WaitOutcome.CANCELLED, ended_at=ended.ended_at + 5)
    await store.append(cancelled)
    await store.append(ended)
    assert await store.history(SRC) == [ended]
    await store.compact(SRC)
    assert await store.history(SRC) == [ended]


async def test_a_cancellation_after_a_reopening_stands(store):
    reopened = make_record(1, outcome=WaitOutcome.REOPENED)
    cancelled = replace(reopened, outcome=WaitOutcome.CANCELLED, ended_at=reopened.ended_at + 5)
    await store.append_many([reopened, cancelled])
    assert await store.history(SRC) == [cancelled]


async def test_find_returns_the_record_of_one_try_loose_or_batched(store):
    # a try that ended lately (a retry looks up the try before it, minutes earlier)
    alone, *batched = [make_record(i, ended_at=NOW - 600 + i) for i in (1, 2, 3)]
    await store.append(alone)
    await store.append_many(batched)
    assert await store.find(SRC, alone.key) == alone
    assert await store.find(SRC, batched[1].key) == batched[1]
    other_try = (*alone.key[:4], alone.key[4] + 1)
    assert await store.find(SRC, other_try) is None
    assert await store.find("unknown", alone.key) is None


async def test_scan_folds_every_stored_record_in_a_worker_thread(store):
    together = [make_record(i, ended_at=T0 + 40_000.0 * i) for i in range(6)]
    await store.append_many(together[:3])
    for record in together[3:]:
        await store.append(record)
    await store.compact(SRC)
    await store.append(replace(together[0], pokes=9, ended_at=together[0].ended_at + 1))
    threads: list[int] = []

    def fold(records: Iterator[WaitRecord]) -> list[WaitRecord]:
        threads.append(threading.get_ident())
        return list(records)

    scanned = await store.scan(SRC, fold)
    assert threads != [threading.get_ident()]
    assert sorted(scanned, key=lambda r: (r.run_id, r.pokes)) == sorted(
        [*together, replace(together[0], pokes=9, ended_at=together[0].ended_at + 1)],
        key=lambda r: (r.run_id, r.pokes),
    )
    assert await store.scan("nobody", list) == []


async def test_scan_hands_records_over_one_at_a_time(store):
    """A fold that drops each record never has more than a few alive: none is promoted."""
    await store.append_many([make_record(i, ended_at=T0 + 60.0 * i) for i in range(300)])
    await store.compact(SRC)
    alive: list[int] = []

    def fold(records: Iterator[WaitRecord]) -> int:
        count = 0
        for count, _ in enumerate(records, start=1):
            if count == 150:
                alive.append(sum(type(o) is WaitRecord for o in gc.get_objects()))
        return count

    assert await store.scan(SRC, fold) == 300
    assert len(alive) == 1
    assert alive[0] <= 3


async def test_a_fold_that_raises_raises_from_scan(store):
    await store.append(make_record(1))

    def fold(records: Iterator[WaitRecord]) -> None:
        raise ValueError("bad fold")

    with pytest.raises(ValueError, match="bad fold"):
        await store.scan(SRC, fold)


async def test_the_change_log_keeps_every_entry_oldest_first(store):
    assert await store.changes(SRC) == []
    entries = [{"at": T0 + i, "action": "tune", "note": f"n{i}"} for i in (3, 1, 2)]
    for entry in entries:
        await store.append_change(SRC, entry)
    await store.append(make_record(1))
    await store.compact(SRC)
    assert [e["at"] for e in await store.changes(SRC)] == [T0 + 1, T0 + 2, T0 + 3]
    assert await store.changes("other") == []
    assert run_ids(await store.history(SRC)) == ["run-1"]  # the log is not history


@pytest.mark.parametrize("change", [None, [], {"at": "now"}, {"at": -1.0}, {"at": float("nan")}])
async def test_a_change_without_a_time_is_refused(store, change):
    with pytest.raises(TypeError, match="a change must be a JSON object with epoch seconds 'at'"):
        await store.append_change(SRC, change)
