"""Real storage faults under a wait: a full disk, a read-only filesystem, damaged content.

The file store is put on a tiny tmpfs (mounted for the test: needs root, as CI has) that is
then filled up or remounted read-only; the wait must still deliver what it saw.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from waitwise.triggers import FileArrivalTrigger, FileStore
from waitwise.triggers.metrics import RECORD_FAILURES, WAITS_SUCCEEDED
from waitwise.triggers.policy import Constant
from waitwise.triggers.runtime import Runtime, use_runtime
from waitwise.triggers.testing import FakeClock, RecordingSink

T0 = 1_700_000_000.0


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True, check=False).returncode == 0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if os.geteuid() != 0 or not _mount("-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount_point)):
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _fill(directory: Path) -> None:
    fd = os.open(directory / "ballast", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:  # ENOSPC: the disk is full
        pass
    finally:
        os.close(fd)


async def _wait_for_landed_file(tmp_path: Path, store: FileStore, sink: RecordingSink) -> Any:
    (tmp_path / "landed.csv").write_text("x")
    trigger = FileArrivalTrigger(
        filepath=str(tmp_path / "landed.csv"),
        poll=Constant(interval=5.0).to_config(),
        timeout=60.0,
        started_at=T0,
        source="feed",
        end_from_trigger=True,
    )
    trigger.task_instance = SimpleNamespace(  # type: ignore[assignment]
        dag_id="d", task_id="t", run_id="r", map_index=-1, try_number=1
    )
    with use_runtime(Runtime(clock=FakeClock(now_s=T0), metrics=sink, store=store)):
        return await asyncio.wait_for(anext(trigger.run()), 30)


async def test_a_full_disk_never_loses_a_detection(tmp_path: Path, small_disk: Path) -> None:
    store, sink = FileStore(small_disk / "store"), RecordingSink()
    await store.history("feed")  # the store opens fine, then the disk fills up
    _fill(small_disk)
    event = await _wait_for_landed_file(tmp_path, store, sink)
    assert type(event).__name__ == "TaskSuccessEvent"
    assert WAITS_SUCCEEDED in sink.names()
    assert RECORD_FAILURES in sink.names()  # reported and counted, after two retries


async def test_a_read_only_store_never_loses_a_detection(tmp_path: Path, small_disk: Path) -> None:
    store, sink = FileStore(small_disk / "store"), RecordingSink()
    await store.history("feed")
    assert _mount("-o", "remount,ro", str(small_disk))
    event = await _wait_for_landed_file(tmp_path, store, sink)
    assert type(event).__name__ == "TaskSuccessEvent"
    assert RECORD_FAILURES in sink.names()


async def test_with_room_again_the_record_is_written(tmp_path: Path, small_disk: Path) -> None:
    store, sink = FileStore(small_disk / "store"), RecordingSink()
    event = await _wait_for_landed_file(tmp_path, store, sink)
    assert type(event).__name__ == "TaskSuccessEvent"
    assert RECORD_FAILURES not in sink.names()
    [record] = await store.history("feed")
    assert record.outcome.value == "success"


class Unreachable(FileStore):
    """A store whose every call fails, as an api-server that is down would make it."""

    async def get_breaker(self, source: str) -> Any:
        raise ConnectionRefusedError(111, "Connection refused")

    async def append(self, record: Any) -> None:
        raise ConnectionRefusedError(111, "Connection refused")


async def test_an_unreachable_store_admits_the_wait_and_loses_nothing(tmp_path: Path) -> None:
    from waitwise.triggers.breaker import BreakerConfig
    from waitwise.triggers.metrics import BREAKER_UNAVAILABLE

    (tmp_path / "landed.csv").write_text("x")
    trigger = FileArrivalTrigger(
        filepath=str(tmp_path / "landed.csv"),
        poll=Constant(interval=5.0).to_config(),
        timeout=60.0,
        started_at=T0,
        source="feed",
        breaker=BreakerConfig().to_config(),
        end_from_trigger=True,
    )
    sink = RecordingSink()
    store = Unreachable(tmp_path / "store")
    with use_runtime(Runtime(clock=FakeClock(now_s=T0), metrics=sink, store=store)):
        event = await anext(trigger.run())
    assert type(event).__name__ == "TaskSuccessEvent"
    assert {BREAKER_UNAVAILABLE, RECORD_FAILURES, WAITS_SUCCEEDED} <= set(sink.names())
