"""Local wait store, one directory per source: outside Airflow and in the simulator.

Layout::

    <root>/<source>/days/<YYYYMMDD>.jsonl   history: the records that ended that UTC day
    <root>/<source>/history.jsonl           0.1.0's history, read as is until compacted
    <root>/<source>/breaker.json            the BreakerSnapshot
    <root>/<source>/changes.jsonl           the change log (auto-tuning), one entry per line
    <root>/<source>/.lock                   flock(2) target that serialises writers
    <root>/<source>/*.corrupt               damaged content moved aside, never dropped

History (:mod:`.file_history`): an append adds one line to one day file under an
exclusive ``fcntl.flock`` on the source's lock file (constant time, whatever the
history holds); reads take no lock and read every day file in one worker thread; a
wait written twice is read once (newest ``ended_at`` wins). Compaction (0.1.0's file
folded into day files, retention by age and count on whole days) runs inside an
append's locked section on the first append to a source in this process, then every
``compaction.every`` appends or ``compaction.interval_s``.

The breaker is a read-modify-write of one file under the same flock, published by
write-to-temp, fsync and ``os.replace``. Each write opens its own descriptor, so flock
excludes other processes *and* other threads: nothing is lost. Readers see a whole
old or a whole new file; they read with ``aiofiles``.

The locked section runs as one unit in a worker thread (``asyncio.to_thread``). A
cancelled caller therefore never leaves the lock held (the thread finishes and
releases it), and a per-loop lock keeps at most one thread per loop and source
blocked on flock, so lock waiters never starve the event loop's executor. POSIX and
local filesystems only (flock over NFS is emulated and not trusted).
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final, TypeVar

import aiofiles
import aiofiles.os

from waitwise.triggers.breaker import BreakerSnapshot, BreakerSnapshotError

from . import file_history
from ._locks import loop_lock
from .base import (
    DEFAULT_MAX_AGE_S,
    DEFAULT_RETENTION,
    BreakerUpdate,
    CompactionPolicy,
    CompactionSchedule,
    check_change,
    check_limit,
    check_max_age,
    check_retention,
    decode_changes,
    newest_last,
    next_snapshot,
    source_of,
)
from .records import SOURCE_PATTERN, WaitKey, WaitRecord, validate_source

BREAKER: Final = "breaker.json"
CHANGES: Final = "changes.jsonl"
LOCK: Final = ".lock"
logger = logging.getLogger(__name__)
_T = TypeVar("_T")
DEFAULT_COMPACTION: Final = CompactionPolicy()


class FileStore:
    """A :class:`~waitwise.triggers.store.base.WaitStore` on a local directory.

    :param root_dir: the directory holding one sub-directory per source; created on
        the first write.
    :param retention: the most records kept per source; the oldest days go first.
    :param max_age_s: records that ended longer ago go (whole UTC days).
    :param compaction: when appends compact (``segment_records`` is not used here).
    :param now: wall-clock epoch seconds, for age retention and the compaction timer.
    """

    def __init__(
        self,
        root_dir: str | os.PathLike[str],
        *,
        retention: int = DEFAULT_RETENTION,
        max_age_s: float = DEFAULT_MAX_AGE_S,
        compaction: CompactionPolicy = DEFAULT_COMPACTION,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.root_dir = Path(root_dir)
        self.retention = check_retention(retention)
        self.max_age_s = check_max_age(max_age_s)
        self._now = now
        self._schedule = CompactionSchedule(compaction, now)

    def __repr__(self) -> str:
        return f"FileStore({str(self.root_dir)!r}, retention={self.retention})"

    async def append(self, record: WaitRecord) -> None:
        """Append ``record`` to its day file (constant time); compact when due."""
        if not isinstance(record, WaitRecord):
            raise TypeError(f"record must be a WaitRecord, got {record!r}")
        due = self._schedule.due(record.source)
        await self._locked(record.source, self._append_locked, record, due)

    async def append_many(self, records: list[WaitRecord]) -> None:
        """Append ``records`` (one source) under one lock: one thread hop, one fsync per line."""
        if len(records) <= 1:
            for record in records:
                await self.append(record)
            return
        source = source_of(records)
        due = self._schedule.due(source)
        await self._locked(source, self._append_many_locked, records, due)

    def _append_many_locked(self, directory: Path, records: list[WaitRecord], due: bool) -> None:
        for record in records:
            self._append_locked(directory, record, compact=False)
        if due:
            self._compact_locked(directory, records[0].source)

    async def find(self, source: str, key: WaitKey) -> WaitRecord | None:
        """Return the record of wait ``key`` (one task instance try), or ``None``."""
        mine = [r for r in await self.history(source) if r.key == key]
        return mine[-1] if mine else None

    async def history(self, source: str, limit: int | None = None) -> list[WaitRecord]:
        """Return the newest ``limit`` records of ``source`` (all if ``None``), each once."""
        limit = check_limit(limit)
        keep = self.retention if limit is None else min(limit, self.retention)
        directory = self._path(source, "")
        records = await asyncio.to_thread(file_history.read_history, source, directory)
        return newest_last(records, keep)

    async def scan(self, source: str, fold: Callable[[Iterator[WaitRecord]], _T]) -> _T:
        """Return ``fold`` of the source's records (see :meth:`WaitStore.scan`), in a thread."""
        directory = self._path(source, "")
        return await asyncio.to_thread(lambda: fold(file_history.iter_history(source, directory)))

    async def append_change(self, source: str, change: Mapping[str, Any]) -> None:
        """Append one change-log entry (one line, under the source's lock)."""
        text = check_change(source, change)
        await self._locked(source, _append_change_locked, text)

    async def changes(self, source: str) -> list[dict[str, Any]]:
        """Return the source's change log (complete lines; damaged ones warned)."""
        path = self._path(source, CHANGES)
        data = await _read(path)
        if data is None:
            return []
        complete = data[: data.rfind(b"\n") + 1]
        return decode_changes(str(path), complete.splitlines())

    async def compact(self, source: str) -> int:
        """Fold 0.1.0's history into day files and apply retention; return days removed."""
        return await self._locked(source, self._compact_locked, source)

    async def sources(self) -> list[str]:
        """Return the sources that have a directory under the root, sorted."""
        try:
            names = await aiofiles.os.listdir(self.root_dir)
        except FileNotFoundError:
            return []
        return sorted(name for name in names if SOURCE_PATTERN.fullmatch(name))

    async def get_breaker(self, source: str) -> BreakerSnapshot | None:
        """Return the stored snapshot, or ``None`` if absent or damaged (warned)."""
        path = self._path(source, BREAKER)
        return _parse_breaker(source, path, await _read(path))

    async def update_breaker(self, source: str, fn: BreakerUpdate) -> BreakerSnapshot:
        """Store ``fn(stored snapshot or None)`` with the version bumped, atomically.

        A damaged stored snapshot is moved to ``breaker.json.corrupt`` (with a
        warning) and ``fn`` receives ``None``. ``fn`` runs in a worker thread.
        """
        return await self._locked(source, self._update_locked, source, fn)

    def _path(self, source: str, name: str) -> Path:
        return self.root_dir / validate_source(source) / name

    async def _locked(self, source: str, fn: Callable[..., _T], *args: object) -> _T:
        directory = self._path(source, "")
        async with loop_lock(f"file:{directory}"):
            return await asyncio.to_thread(_run_locked, directory, fn, *args)

    def _append_locked(self, directory: Path, record: WaitRecord, compact: bool) -> None:
        file_history.append_line(directory, record)
        if compact:
            self._compact_locked(directory, record.source)

    def _compact_locked(self, directory: Path, source: str) -> int:
        now = self._now()
        return file_history.compact(source, directory, self.retention, self.max_age_s, now)

    def _update_locked(self, directory: Path, source: str, fn: BreakerUpdate) -> BreakerSnapshot:
        path = directory / BREAKER
        current = _parse_breaker(source, path, _read_sync(path), quarantine=True)
        new = next_snapshot(source, current, fn)
        _write_atomic(path, _dumps(new.to_json_dict()))
        return new


def _append_change_locked(directory: Path, text: str) -> None:
    file_history.append_bytes(directory / CHANGES, text.encode() + b"\n")


def _dumps(data: object) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def _run_locked(directory: Path, fn: Callable[..., _T], *args: object) -> _T:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT, file_history.PRIVATE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fn(directory, *args)
    finally:
        os.close(fd)  # closing the only descriptor releases the flock


async def _read(path: Path) -> bytes | None:
    try:
        async with aiofiles.open(path, "rb") as fh:
            return await fh.read()
    except FileNotFoundError:
        return None


def _read_sync(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb", opener=file_history.private) as fh:  # blocking-ok: in to_thread
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # a no-op once replaced


def _quarantine(path: Path, chunks: list[bytes]) -> None:
    target = path.with_name(f"{path.name}.corrupt")
    with open(target, "ab", opener=file_history.private) as fh:  # blocking-ok: in to_thread
        fh.write(b"".join(chunk.rstrip(b"\n") + b"\n" for chunk in chunks))
        fh.flush()
        os.fsync(fh.fileno())
    logger.warning("Moved %d damaged entries from %s to %s", len(chunks), path, target)


def _parse_breaker(
    source: str, path: Path, data: bytes | None, *, quarantine: bool = False
) -> BreakerSnapshot | None:
    if data is None:
        return None
    try:
        snapshot = BreakerSnapshot.from_json_dict(json.loads(data))
        if snapshot.source != source:
            raise BreakerSnapshotError(f"snapshot of source {snapshot.source!r}")
    except (ValueError, RecursionError) as exc:
        logger.warning("Ignoring damaged breaker state %s: %s", path, exc)
        if quarantine:
            _quarantine(path, [data])
        return None
    return snapshot
