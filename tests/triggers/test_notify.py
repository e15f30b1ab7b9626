"""DirectoryEvents on real inotify in tmp_path (a local filesystem)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from asyncinotify import Mask

from waitwise.triggers import mounts, notify
from waitwise.triggers.notify import DirectoryEvents, Subscription

_marks = itertools.count()


class Woken:
    """A callback that counts its calls and sets an asyncio.Event."""

    def __init__(self) -> None:
        self.calls = 0
        self.event = asyncio.Event()

    def __call__(self) -> None:
        self.calls += 1
        self.event.set()

    async def wait(self) -> None:
        await asyncio.wait_for(self.event.wait(), timeout=5)
        self.event.clear()


def write_closed(path: Path, data: bytes = b"x") -> None:
    path.write_bytes(data)


def kernel_watches(events: DirectoryEvents) -> int:
    """Count the watches the kernel holds for the instance's inotify fd."""
    assert events._inotify is not None
    fdinfo = Path(f"/proc/self/fdinfo/{events._inotify.fd}").read_text()
    return fdinfo.count("inotify wd:")


async def barrier(directory: Path, woken: Woken) -> None:
    """Return once every event raised before now in ``directory`` has been applied.

    inotify queues events in order: when the close of a fresh marker file has called back,
    every earlier event of the directory was dispatched.
    """
    woken.event.clear()
    write_closed(directory / f".mark-{next(_marks)}")
    await woken.wait()


@pytest.fixture
def events() -> Iterator[DirectoryEvents]:
    made = DirectoryEvents(notifiable=lambda _path: True)
    yield made
    made.close()


@pytest.fixture(autouse=True)
def _fresh_log_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mounts, "_LOGGED", set())


def subscribed(
    events: DirectoryEvents, directory: Path, callback: Callable[[], None]
) -> Subscription:
    subscription = events.subscribe(str(directory), callback)
    assert subscription is not None
    return subscription


async def test_a_file_is_writing_while_open_and_calls_back_once_closed(
    events: DirectoryEvents, tmp_path: Path
) -> None:
    woken = Woken()
    subscribed(events, tmp_path, woken)
    with (tmp_path / "data.csv").open("wb") as handle:
        handle.write(b"a,b\n")
        handle.flush()
        await barrier(tmp_path, woken)
        assert "data.csv" in events.writing(str(tmp_path))
    await woken.wait()
    assert "data.csv" not in events.writing(str(tmp_path))


async def test_a_created_file_is_writing_before_its_first_write(
    events: DirectoryEvents, tmp_path: Path
) -> None:
    woken = Woken()
    subscribed(events, tmp_path, woken)
    with (tmp_path / "empty").open("wb"):
        await barrier(tmp_path, woken)
        assert events.writing(str(tmp_path)) == {"empty"}
    await woken.wait()
    assert events.writing(str(tmp_path)) == frozenset()


async def test_links_and_directories_are_never_stuck_in_writing(
    events: DirectoryEvents, tmp_path: Path
) -> None:
    watched, elsewhere = tmp_path / "in", tmp_path / "out"
    watched.mkdir()
    elsewhere.mkdir()
    write_closed(elsewhere / "source")
    woken = Woken()
    subscribed(events, watched, woken)
    os.link(elsewhere / "source", watched / "linked")
    os.symlink(elsewhere / "source", watched / "symlinked")
    (watched / "subdir").mkdir()
    os.listdir(watched / "subdir")  # IN_CREATE then IN_OPEN, both flagged IN_ISDIR
    await barrier(watched, woken)
    assert events.writing(str(watched)) == frozenset()


async def test_a_file_renamed_into_the_directory_calls_back(
    events: DirectoryEvents, tmp_path: Path
) -> None:
    watched, elsewhere = tmp_path / "in", tmp_path / "staging"
    watched.mkdir()
    elsewhere.mkdir()
    write_closed(elsewhere / "part.tmp")
    woken = Woken()
    subscribed(events, watched, woken)
    os.rename(elsewhere / "part.tmp", watched / "part.csv")
    await woken.wait()
    assert woken.calls == 1
    assert events.writing(str(watched)) == frozenset()


async def test_a_burst_calls_each_subscriber_once_per_loop_iteration(
    events: DirectoryEvents, tmp_path: Path
) -> None:
    woken = Woken()
    subscribed(events, tmp_path, woken)
    watch = events._by_wd[next(iter(events._by_wd))]
    for n in range(50):
        events._dispatch(watch.wd, int(Mask.CLOSE_WRITE), f"f{n}")
    await woken.wait()
    assert woken.calls == 1


async def test_many_subscribers_share_one_watch_until_the_last_leaves(
    events: DirectoryEvents, tmp_path: Path
) -> None:
    woken = [Woken() for _ in range(100)]
    subscriptions = [subscribed(events, tmp_path, w) for w in woken]
    assert events.watch_count == 1
    assert events.watched_directories == {str(tmp_path)}
    assert kernel_watches(events) == 1  # the kernel's own count
    write_closed(tmp_path / "x")
    await asyncio.gather(*(w.wait() for w in woken))
    for subscription in subscriptions[:-1]:
        subscription.close()
    assert events.watch_count == 1
    subscriptions[-1].close()
    subscriptions[-1].close()  # idempotent
    assert events.watch_count == 0
    assert events.watched_directories == frozenset()
    assert events._inotify is None


async def test_ten_thousand_subscribers_on_a_hundred_directories_add_a_hundred_watches(
    tmp_path: Path,
) -> None:
    checked: list[str] = []

    def local(path: str) -> bool:
        checked.append(path)
        return True

    events = DirectoryEvents(notifiable=local)
    directories = [tmp_path / f"d{n}" for n in range(100)]
    for directory in directories:
        directory.mkdir()
    for _ in range(100):
        for directory in directories:
            subscribed(events, directory, Woken())
    assert len(checked) == 100
    assert events.watch_count == 100
    assert kernel_watches(events) == 100
    events.close()


async def test_two_spellings_of_a_directory_share_one_watch(
    events: DirectoryEvents, tmp_path: Path
) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "alias").symlink_to(real)
    by_alias, by_real = Woken(), Woken()
    subscribed(events, tmp_path / "alias", by_alias)
    subscribed(events, real, by_real)
    assert events.watched_directories == {str(real)}
    assert events.watch_count == 1
    write_closed(real / "f")
    await by_alias.wait()
    await by_real.wait()


async def test_an_event_in_one_directory_does_not_call_another_s_subscribers(
    events: DirectoryEvents, tmp_path: Path
) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    in_first, in_second = Woken(), Woken()
    subscribed(events, first, in_first)
    subscribed(events, second, in_second)
    assert events.watch_count == 2
    write_closed(first / "f")
    await in_first.wait()
    await asyncio.sleep(0)  # the flush that called in_first would have called in_second too
    assert in_second.calls == 0


async def test_a_raising_callback_stops_neither_the_others_nor_later_events(
    events: DirectoryEvents, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> None:
        raise RuntimeError("subscriber bug")

    woken = Woken()
    subscribed(events, tmp_path, broken)
    subscribed(events, tmp_path, woken)
    write_closed(tmp_path / "one")
    await woken.wait()
    write_closed(tmp_path / "two")
    await woken.wait()
    assert woken.calls == 2
    assert "subscriber bug" in caplog.text


async def test_deleting_the_directory_calls_back_and_drops_the_watch(
    events: DirectoryEvents, tmp_path: Path
) -> None:
    watched = tmp_path / "landing"
    watched.mkdir()
    woken = Woken()
    old = subscribed(events, watched, woken)
    watched.rmdir()
    await woken.wait()
    assert events.watch_count == 0
    watched.mkdir()
    again = Woken()
    subscribed(events, watched, again)
    old.close()  # a dropped watch's subscription leaves the new watch alone
    assert events.watch_count == 1
    write_closed(watched / "f")
    await again.wait()


async def test_moving_the_directory_calls_back_and_removes_the_watch(
    events: DirectoryEvents, tmp_path: Path
) -> None:
    watched = tmp_path / "landing"
    watched.mkdir()
    other = tmp_path / "other"
    other.mkdir()
    woken, in_other = Woken(), Woken()
    subscribed(events, watched, woken)
    subscribed(events, other, in_other)  # keeps the inotify instance open
    watched.rename(tmp_path / "moved")
    await woken.wait()
    assert events.watched_directories == {str(other)}
    assert kernel_watches(events) == 1  # the moved directory's watch is gone


async def test_a_reader_cancelled_from_outside_is_replaced_on_the_next_subscribe(
    events: DirectoryEvents, tmp_path: Path
) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    old = subscribed(events, first, Woken())
    reader = events._task
    assert reader is not None
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    await asyncio.sleep(0)  # its done callback
    assert events.watch_count == 0
    woken = Woken()
    subscribed(events, second, woken)
    old.close()
    write_closed(second / "f")
    await woken.wait()


async def test_a_queue_overflow_calls_every_subscriber_and_forgets_writing(
    events: DirectoryEvents, tmp_path: Path
) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    in_first, in_second = Woken(), Woken()
    subscribed(events, first, in_first)
    subscribed(events, second, in_second)
    with (first / "open").open("wb"):
        await barrier(first, in_first)
        assert events.writing(str(first)) == {"open"}
        events._dispatch(-1, int(Mask.Q_OVERFLOW), None)
        await in_first.wait()
        await in_second.wait()
        assert events.writing(str(first)) == frozenset()


async def test_writing_is_capped_per_directory(tmp_path: Path) -> None:
    events = DirectoryEvents(notifiable=lambda _path: True, writing_cap=3)
    woken = Woken()
    subscribed(events, tmp_path, woken)
    wd = next(iter(events._by_wd))
    for name in ("a", "b", "c", "d"):
        events._dispatch(wd, int(Mask.MODIFY), name)
    assert events.writing(str(tmp_path)) == {"d"}
    events.close()


async def test_a_full_path_cache_keeps_what_watched_directories_need(
    events: DirectoryEvents, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notify, "_CACHE_CAP", 3)
    woken = Woken()
    subscribed(events, tmp_path, woken)
    for n in range(5):
        assert events.subscribe(str(tmp_path / f"missing-{n}"), Woken()) is None
    with (tmp_path / "open").open("wb"):
        await barrier(tmp_path, woken)
        assert events.writing(str(tmp_path)) == {"open"}


async def test_subscribe_returns_none_where_events_cannot_be_used(
    events: DirectoryEvents, tmp_path: Path
) -> None:
    write_closed(tmp_path / "file")
    assert events.subscribe(str(tmp_path), Woken(), mode="poll") is None
    assert events.subscribe(str(tmp_path / "missing"), Woken()) is None
    assert events.subscribe(str(tmp_path / "file"), Woken()) is None
    assert events.watch_count == 0


async def test_auto_mode_polls_where_can_notify_is_false_and_events_mode_forces_a_watch(
    tmp_path: Path,
) -> None:
    seen: list[str] = []

    def remote(path: str) -> bool:
        seen.append(path)
        return False

    events = DirectoryEvents(notifiable=remote)
    assert events.subscribe(str(tmp_path), Woken()) is None
    assert events.subscribe(str(tmp_path), Woken()) is None
    assert seen == [str(tmp_path)]  # cached per directory
    woken = Woken()
    assert events.subscribe(str(tmp_path), woken, mode="events") is not None
    write_closed(tmp_path / "f")
    await woken.wait()
    events.close()


async def test_asubscribe_checks_the_filesystem_once_in_a_thread(tmp_path: Path) -> None:
    threads: list[bool] = []

    def local(path: str) -> bool:
        threads.append(_off_loop())
        return True

    events = DirectoryEvents(notifiable=local)
    subscriptions = [await events.asubscribe(str(tmp_path), Woken()) for _ in range(3)]
    assert all(s is not None for s in subscriptions)
    assert threads == [True]
    events.close()


def _off_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return True
    return False


async def test_each_reason_for_none_is_logged_once(
    events: DirectoryEvents, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=notify.__name__)
    for n in range(5):
        assert events.subscribe(str(tmp_path / f"missing-{n}"), Woken()) is None
        assert events.subscribe(str(tmp_path), Woken(), mode="poll") is None
    infos = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert len(infos) == 2


async def test_a_closed_instance_refuses_and_the_loop_gets_a_new_one(tmp_path: Path) -> None:
    first = notify.events_for_loop()
    assert notify.events_for_loop() is first
    first.close()
    assert first.subscribe(str(tmp_path), Woken(), mode="events") is None
    assert notify.events_for_loop() is not first


def test_each_loop_has_its_own_instance() -> None:
    async def both() -> tuple[DirectoryEvents, DirectoryEvents]:
        return notify.events_for_loop(), notify.events_for_loop()

    first, again = asyncio.run(both())
    second, _ = asyncio.run(both())
    assert first is again
    assert second is not first


async def test_unknown_watches_and_odd_events_are_ignored(events: DirectoryEvents) -> None:
    events._dispatch(12345, int(Mask.CLOSE_WRITE), "x")
    events._dispatch(12345, int(Mask.IGNORED), None)
    assert events.watch_count == 0


def test_an_unknown_mode_is_an_error(events: DirectoryEvents) -> None:
    with pytest.raises(ValueError, match="mode must be one of"):
        events.subscribe("/tmp", Woken(), mode="sometimes")  # type: ignore[arg-type]


def test_the_mask_bits_are_inotify_s() -> None:
    expected = (Mask.CLOSE_WRITE | Mask.MOVED_TO | Mask.CREATE | Mask.MODIFY | Mask.DELETE) | (
        Mask.MOVED_FROM | Mask.OPEN | Mask.DELETE_SELF | Mask.MOVE_SELF
    )
    assert int(expected) == notify.WATCH_MASK
    pairs = [
        (notify._Q_OVERFLOW, Mask.Q_OVERFLOW),
        (notify._IGNORED, Mask.IGNORED),
        (notify._UNMOUNT, Mask.UNMOUNT),
        (notify._ISDIR, Mask.ISDIR),
        (notify._ONLYDIR, Mask.ONLYDIR),
    ]
    assert [int(b) for _, b in pairs] == [a for a, _ in pairs]


def test_the_mount_table_part_is_re_exported_from_mounts() -> None:
    for name in mounts.__all__:
        assert getattr(notify, name) is getattr(mounts, name)
        assert name in notify.__all__


def nfs_at(path: Path) -> str:
    """Return a mount table with an NFS mount at ``path``'s real path."""
    real = os.path.realpath(path)
    return f"22 1 252:1 / / rw - ext4 /dev/vda rw\n30 22 0:40 / {real} rw - nfs4 host:/x rw"


async def test_auto_mode_asks_the_mount_table_by_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    table = nfs_at(tmp_path)
    monkeypatch.setattr(mounts, "read_mountinfo", lambda: table)
    events = DirectoryEvents()  # notifiable: mounts.can_notify, reading the patched table
    assert events.subscribe(str(tmp_path), Woken()) is None
    assert events.subscribe(str(tmp_path), Woken(), mode="events") is not None
    events.close()
