"""Local wait store, one directory per source: outside Airflow and in the simulator.

Layout::

    <root>/<source>/history.jsonl   one WaitRecord per line, newest last
    <root>/<source>/breaker.json    the BreakerSnapshot
    <root>/<source>/.lock           flock(2) target that serialises writers
    <root>/<source>/*.corrupt       damaged content moved aside, never dropped

Every write is a read-modify-write of one whole file under an exclusive
``fcntl.flock`` on the source's lock file, published by write-to-temp, fsync and
``os.replace``. Each write opens its own descriptor, so flock excludes other
processes *and* other threads: nothing is lost. Readers take no lock: the rename is
atomic, so they see a whole old or a whole new file; they read with ``aiofiles``.

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
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Final, TypeVar

import aiofiles
import aiofiles.os

from waitwise.triggers.breaker import BreakerSnapshot, BreakerSnapshotError
from waitwise.triggers.errors import WaitRecordError

from ._locks import loop_lock
from .base import (
    DEFAULT_RETENTION,
    BreakerUpdate,
    check_limit,
    check_retention,
    newest_last,
    next_snapshot,
)
from .records import SOURCE_PATTERN, WaitRecord, validate_source

HISTORY: Final = "history.jsonl"
BREAKER: Final = "breaker.json"
LOCK: Final = ".lock"
logger = logging.getLogger(__name__)
_T = TypeVar("_T")


class FileStore:
    """A :class:`~waitwise.triggers.store.base.WaitStore` on a local directory.

    :param root_dir: the directory holding one sub-directory per source; created on
        the first write.
    :param retention: the most records kept per source; the oldest go first.
    """

    def __init__(
        self, root_dir: str | os.PathLike[str], *, retention: int = DEFAULT_RETENTION
    ) -> None:
        self.root_dir = Path(root_dir)
        self.retention = check_retention(retention)

    def __repr__(self) -> str:
        return f"FileStore({str(self.root_dir)!r}, retention={self.retention})"

    async def append(self, record: WaitRecord) -> None:
        """Upsert ``record`` by key and trim the source's history to the retention."""
        if not isinstance(record, WaitRecord):
            raise TypeError(f"record must be a WaitRecord, got {record!r}")
        await self._locked(record.source, self._append_locked, record)

    async def history(self, source: str, limit: int | None = None) -> list[WaitRecord]:
        """Return the newest ``limit`` records of ``source`` (all if ``None``)."""
        limit = check_limit(limit)
        path = self._path(source, HISTORY)
        return newest_last(_parse_history(source, path, await _read(path)), limit)

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

    def _append_locked(self, directory: Path, record: WaitRecord) -> None:
        path = directory / HISTORY
        stored = _parse_history(record.source, path, _read_sync(path), quarantine=True)
        kept = newest_last([*stored, record], self.retention)
        _write_atomic(path, b"".join(_dumps(r.to_json_dict()) + b"\n" for r in kept))

    def _update_locked(self, directory: Path, source: str, fn: BreakerUpdate) -> BreakerSnapshot:
        path = directory / BREAKER
        current = _parse_breaker(source, path, _read_sync(path), quarantine=True)
        new = next_snapshot(source, current, fn)
        _write_atomic(path, _dumps(new.to_json_dict()))
        return new


def _dumps(data: object) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def _run_locked(directory: Path, fn: Callable[..., _T], *args: object) -> _T:
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
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
        with open(tmp, "wb") as fh:  # blocking-ok: the locked section runs in to_thread
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # a no-op once replaced


def _quarantine(path: Path, chunks: list[bytes]) -> None:
    target = path.with_name(f"{path.name}.corrupt")
    with open(target, "ab") as fh:  # blocking-ok: the locked section runs in to_thread
        fh.write(b"".join(chunk.rstrip(b"\n") + b"\n" for chunk in chunks))
        fh.flush()
        os.fsync(fh.fileno())
    logger.warning("Moved %d damaged entries from %s to %s", len(chunks), path, target)


def _parse_history(
    source: str, path: Path, data: bytes | None, *, quarantine: bool = False
) -> list[WaitRecord]:
    records: list[WaitRecord] = []
    damaged: list[bytes] = []
    for number, line in enumerate((data or b"").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = WaitRecord.from_json_dict(json.loads(line))
            if record.source != source:
                raise WaitRecordError(f"record of source {record.source!r}")
        except (ValueError, RecursionError) as exc:
            logger.warning("Skipping damaged wait record %s:%d: %s", path, number, exc)
            damaged.append(line)
        else:
            records.append(record)
    if quarantine and damaged:
        _quarantine(path, damaged)
    return records


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
