from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
import threading

import pytest

from waitwise.triggers.breaker import BreakerSnapshot
from waitwise.triggers.store import CompactionPolicy, FileStore

from .fakes import NOW, SRC, T0, as_0_1_0, bump, make_record

DAMAGED = [
    b"not json at all",
    b'{"schema": 1, "source": "finance"}',
    b"\xff\xfe\x00garbage",
    b"[1, 2, 3]",
    json.dumps(make_record(9, source="partner").to_json_dict()).encode(),
]


@pytest.fixture
def store(tmp_path):
    return FileStore(
        tmp_path, retention=100, compaction=CompactionPolicy(every=None), now=lambda: NOW
    )


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def v1_line(i: int) -> bytes:
    """Record i as 0.1.0 wrote it (schema 1, no last_miss_at)."""
    return json.dumps(as_0_1_0(make_record(i))).encode()


DAY_FILE = "days/20231114.jsonl"


async def test_layout_is_one_directory_per_source_and_one_file_per_day(store, tmp_path):
    await store.append(make_record(1))
    await store.append(make_record(2, ended_at=T0 + 86_400))
    await store.update_breaker(SRC, bump)
    assert sorted(str(p.relative_to(tmp_path / SRC)) for p in (tmp_path / SRC).rglob("*")) == [
        ".lock",
        "breaker.json",
        "days",
        DAY_FILE,
        "days/20231115.jsonl",
    ]


async def test_appends_never_read_the_history(store, tmp_path, caplog):
    await store.append(make_record(1))
    day = tmp_path / SRC / DAY_FILE
    day.write_bytes(day.read_bytes() + b"\n".join(DAMAGED) + b"\n")
    (tmp_path / SRC / "history.jsonl").write_bytes(b"garbage\n")
    with caplog.at_level(logging.WARNING):
        await store.append(make_record(2))
    assert warnings_of(caplog) == []  # a reading append would have warned about the damage


async def test_damaged_lines_are_skipped_with_a_warning(store, tmp_path, caplog):
    await store.append(make_record(1))
    day = tmp_path / SRC / DAY_FILE
    day.write_bytes(day.read_bytes() + b"\n".join(DAMAGED) + b"\n\n")
    with caplog.at_level(logging.WARNING):
        records = await store.history(SRC)
    assert (records, len(warnings_of(caplog))) == ([make_record(1)], 5)
    assert warnings_of(caplog)[0].startswith(f"Skipping damaged wait record {day}:2: ")


async def test_a_torn_last_line_is_ignored_then_closed_by_the_next_append(store, tmp_path, caplog):
    await store.append(make_record(1))
    day = tmp_path / SRC / DAY_FILE
    day.write_bytes(day.read_bytes() + b'{"half a rec')  # a crash mid-write
    with caplog.at_level(logging.WARNING):
        assert await store.history(SRC) == [make_record(1)]
        assert warnings_of(caplog) == []
        await store.append(make_record(2))
        assert await store.history(SRC) == [make_record(1), make_record(2)]
    assert warnings_of(caplog)[0].startswith(f"Skipping damaged wait record {day}:2: ")


async def test_history_written_by_0_1_0_is_read_then_folded_into_day_files(store, tmp_path, caplog):
    (tmp_path / SRC).mkdir()
    legacy = tmp_path / SRC / "history.jsonl"
    legacy.write_bytes(v1_line(1) + b"\n" + DAMAGED[0] + b"\n" + v1_line(2) + b"\n")
    await store.append(make_record(3))
    with caplog.at_level(logging.WARNING):
        before = await store.history(SRC)
        await store.compact(SRC)
    after = await store.history(SRC)
    assert ([r.schema for r in before], after, legacy.exists()) == ([1, 1, 3], before, False)
    assert (tmp_path / SRC / "history.jsonl.corrupt").read_bytes() == DAMAGED[0] + b"\n"
    assert f"Moved 1 damaged entries to {legacy}.corrupt" in warnings_of(caplog)


async def test_a_wholly_garbage_0_1_0_file_is_not_a_crash(store, tmp_path, caplog):
    (tmp_path / SRC).mkdir()
    (tmp_path / SRC / "history.jsonl").write_bytes(bytes(range(256)) * 4)
    with caplog.at_level(logging.WARNING):
        assert await store.history(SRC) == []
        await store.append(make_record(1))
        await store.compact(SRC)
    assert await store.history(SRC) == [make_record(1)]


@pytest.mark.parametrize(
    ("options", "days_kept"),
    [
        ({"retention": 3}, ["20231121.jsonl", "20231122.jsonl", "20231123.jsonl"]),
        ({"max_age_s": 5 * 86_400}, [f"202311{d}.jsonl" for d in range(19, 24)]),
    ],
)
async def test_retention_drops_whole_days_by_count_and_by_age(tmp_path, options, days_kept):
    policy = CompactionPolicy(every=None)
    store = FileStore(tmp_path, compaction=policy, now=lambda: NOW, **options)
    for i in range(10):
        await store.append(make_record(i, ended_at=T0 + i * 86_400))
    await store.compact(SRC)
    assert sorted(p.name for p in (tmp_path / SRC / "days").iterdir()) == days_kept


async def test_appends_compact_first_then_every_nth(tmp_path):
    policy = CompactionPolicy(every=3)
    store = FileStore(tmp_path, retention=1, compaction=policy, now=lambda: NOW)
    days = []
    for i in range(4):
        await store.append(make_record(i, ended_at=T0 + i * 86_400))
        days.append(len(list((tmp_path / SRC / "days").iterdir())))
    assert days == [1, 2, 3, 1]


async def test_leftover_temp_files_and_foreign_names_are_ignored(store, tmp_path):
    await store.append(make_record(1))
    (tmp_path / SRC / ".breaker.json.abc.tmp").write_bytes(b"half a wri")
    for name in ("notes.txt", "2023.jsonl", "20231399.jsonl"):
        (tmp_path / SRC / "days" / name).write_bytes(b"x\n")
    (tmp_path / ".DS_Store").write_bytes(b"")
    (tmp_path / "not a source").mkdir()
    assert (await store.history(SRC), await store.sources()) == (
        [make_record(1)],
        [SRC],
    )


@pytest.mark.parametrize(
    "content",
    [
        b"{",
        b"[]",
        b'{"schema": 1}',
        json.dumps(BreakerSnapshot("partner").to_json_dict()).encode(),
    ],
)
async def test_damaged_breaker_is_ignored_then_moved_aside(store, tmp_path, caplog, content):
    path = tmp_path / SRC / "breaker.json"
    path.parent.mkdir()
    path.write_bytes(content)
    seen = []

    def spy(snapshot: BreakerSnapshot | None) -> BreakerSnapshot:
        seen.append(snapshot)
        return bump(snapshot)

    with caplog.at_level(logging.WARNING):
        before = await store.get_breaker(SRC)
        after = await store.update_breaker(SRC, spy)
    assert (before, seen, after.version) == (None, [None], 1)
    assert (tmp_path / SRC / "breaker.json.corrupt").read_bytes() == content + b"\n"
    assert warnings_of(caplog)[0].startswith(f"Ignoring damaged breaker state {path}: ")


async def test_sources_of_a_missing_root_is_empty(tmp_path):
    assert await FileStore(tmp_path / "nowhere").sources() == []


async def test_cancelled_callers_never_leave_the_lock_held(store):
    entered, release = threading.Event(), threading.Event()

    def slow(snapshot):
        entered.set()
        release.wait(timeout=30)
        return bump(snapshot)

    holder = asyncio.create_task(store.update_breaker(SRC, slow))
    await asyncio.to_thread(entered.wait, 30)
    waiter = asyncio.create_task(store.update_breaker(SRC, bump))
    await asyncio.sleep(0)
    holder.cancel()
    waiter.cancel()
    release.set()
    results = await asyncio.gather(holder, waiter, return_exceptions=True)
    final = await asyncio.wait_for(store.update_breaker(SRC, bump), timeout=30)
    # The holder's thread finished its write although its caller was cancelled.
    assert ([type(r) for r in results], final.version, final.consecutive_failures) == (
        [asyncio.CancelledError, asyncio.CancelledError],
        2,
        2,
    )


def test_repr_names_root_and_retention(tmp_path):
    assert repr(FileStore(tmp_path, retention=7)) == f"FileStore({str(tmp_path)!r}, retention=7)"


async def test_the_store_keeps_its_files_to_its_owner(tmp_path):
    store = FileStore(tmp_path / "store")
    await store.append(make_record(1))
    await store.update_breaker(SRC, lambda _: BreakerSnapshot(SRC))
    for path in (tmp_path / "store").rglob("*"):
        mode = stat.S_IMODE(os.stat(path).st_mode)
        assert mode & 0o077 == 0, f"{path} is {oct(mode)}"


async def test_a_change_after_a_torn_line_is_kept(tmp_path):
    store = FileStore(tmp_path)
    await store.append_change("feed", {"at": 1.0})
    path = tmp_path / "feed" / "changes.jsonl"
    path.write_bytes(path.read_bytes() + b'{"at": 2.0, "acti')  # a crash mid-write
    await store.append_change("feed", {"at": 3.0})
    assert [c["at"] for c in await store.changes("feed")] == [1.0, 3.0]
