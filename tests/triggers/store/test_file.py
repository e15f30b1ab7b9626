from __future__ import annotations

import asyncio
import json
import logging
import threading

import pytest

from waitwise.triggers.breaker import BreakerSnapshot
from waitwise.triggers.store import FileStore

from .fakes import SRC, bump, make_record

DAMAGED = [
    b"not json at all",
    b'{"schema": 1, "source": "finance"}',
    b"\xff\xfe\x00garbage",
    b"[1, 2, 3]",
    json.dumps(make_record(9, source="partner").to_json_dict()).encode(),
]


@pytest.fixture
def store(tmp_path):
    return FileStore(tmp_path, retention=100)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


async def test_layout_is_one_directory_per_source(store, tmp_path):
    await store.append(make_record(1))
    await store.update_breaker(SRC, bump)
    assert sorted(p.name for p in (tmp_path / SRC).iterdir()) == [
        ".lock",
        "breaker.json",
        "history.jsonl",
    ]


async def test_damaged_lines_are_skipped_with_a_warning(store, tmp_path, caplog):
    await store.append(make_record(1))
    history = tmp_path / SRC / "history.jsonl"
    history.write_bytes(history.read_bytes() + b"\n".join(DAMAGED) + b"\n\n")
    with caplog.at_level(logging.WARNING):
        records = await store.history(SRC)
    assert (records, len(warnings_of(caplog))) == ([make_record(1)], 5)
    assert warnings_of(caplog)[0].startswith(f"Skipping damaged wait record {history}:2: ")


async def test_the_next_write_moves_damaged_lines_aside_and_keeps_good_records(
    store, tmp_path, caplog
):
    await store.append(make_record(1))
    history = tmp_path / SRC / "history.jsonl"
    history.write_bytes(history.read_bytes() + b"\n".join(DAMAGED) + b"\n")
    with caplog.at_level(logging.WARNING):
        await store.append(make_record(2))
    corrupt = (tmp_path / SRC / "history.jsonl.corrupt").read_bytes()
    assert (await store.history(SRC), corrupt.splitlines()) == (
        [make_record(1), make_record(2)],
        DAMAGED,
    )
    assert f"Moved 5 damaged entries from {history} to {history}.corrupt" in warnings_of(caplog)


async def test_a_wholly_garbage_history_file_is_not_a_crash(store, tmp_path, caplog):
    (tmp_path / SRC).mkdir()
    (tmp_path / SRC / "history.jsonl").write_bytes(bytes(range(256)) * 4)
    with caplog.at_level(logging.WARNING):
        assert await store.history(SRC) == []
        await store.append(make_record(1))
    assert await store.history(SRC) == [make_record(1)]


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


async def test_leftover_temp_files_and_foreign_names_are_ignored(store, tmp_path):
    await store.append(make_record(1))
    (tmp_path / SRC / ".history.jsonl.abc.tmp").write_bytes(b"half a wri")
    (tmp_path / ".DS_Store").write_bytes(b"")
    (tmp_path / "not a source").mkdir()
    assert (await store.history(SRC), await store.sources()) == (
        [make_record(1)],
        [SRC],
    )


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
