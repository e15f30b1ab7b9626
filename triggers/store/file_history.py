"""The FileStore's history of one source: append-only day files, read in bulk.

Layout under ``<root>/<source>/``::

    days/<YYYYMMDD>.jsonl   the records that ended that UTC day, one per line, appended
    history.jsonl           0.1.0's file (schema-1 records): read as is, folded into
                            day files by the next compaction, then removed

Contract (every function here but :func:`read_history` runs under the source's
exclusive flock, in a worker thread):

- :func:`append_line` appends one line to one day file: constant time, no read of the
  history. A line torn by a crash (no final newline) is closed first, so it damages
  only itself; readers skip it with a warning.
- :func:`read_history` (and :func:`iter_history`) takes no lock: files are only
  appended to, or created and removed whole, so a reader sees every complete line;
  an unfinished last line is ignored (its writer still holds the lock).
- :func:`compact` folds 0.1.0's file into day files, then applies retention to whole
  days: days older than ``max_age_s`` (before the newest day, at most now) go, then
  the oldest days while the newer ones
  still hold ``max_records`` lines. It reads only what it keeps counting (newest
  first), so its cost is bounded by the retention, not the history.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final

from .base import canonical
from .records import WaitRecord
from .segments import DAY_FORMAT, age_reference, day_expired, day_of, decode_lines, decode_record

DAYS: Final = "days"
LEGACY: Final = "history.jsonl"
logger = logging.getLogger(__name__)
PRIVATE_MODE = 0o600
"""Mode of the files the store creates: history and breaker state are its owner's only."""


def day_files(directory: Path) -> list[Path]:
    """Return the source's day files, oldest first (foreign names ignored)."""
    try:
        names = os.listdir(directory / DAYS)  # blocking-ok: callers run in to_thread
    except FileNotFoundError:
        return []
    return [directory / DAYS / name for name in sorted(names) if _is_day_file(name)]


def _is_day_file(name: str) -> bool:
    stem, dot, suffix = name.partition(".")
    if (dot, suffix) != (".", "jsonl") or len(stem) != 8 or not stem.isdigit():
        return False
    try:
        time.strptime(stem, DAY_FORMAT)
    except ValueError:
        return False
    return True


def append_line(directory: Path, record: WaitRecord) -> None:
    """Append ``record`` to its day file (fsynced); see the module docstring."""
    append_lines(directory, day_of(record.ended_at), [record])


def append_lines(directory: Path, day: str, records: Iterable[WaitRecord]) -> None:
    """Append ``records`` to the file of ``day`` in one write, fsynced."""
    (directory / DAYS).mkdir(mode=0o700, parents=True, exist_ok=True)
    data = b"".join(canonical(record).encode() + b"\n" for record in records)
    append_bytes(directory / DAYS / f"{day}.jsonl", data)


def append_bytes(path: Path, data: bytes) -> None:
    """Append ``data`` (whole lines) to ``path`` in one write, fsynced.

    A line a crash tore off is closed first, so the tear damages only itself.
    """
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT
    fd = os.open(path, flags, PRIVATE_MODE)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data  # close a line a crash tore off
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_history(source: str, directory: Path) -> list[WaitRecord]:
    """Read every record of every day file and of 0.1.0's file (damaged lines warned)."""
    return list(iter_history(source, directory))


def iter_history(source: str, directory: Path) -> Iterator[WaitRecord]:
    """Yield :func:`read_history`'s records one at a time.

    A file is read whole, then decoded line by line as the caller asks.
    """
    for path in [directory / LEGACY, *day_files(directory)]:
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # removed by a compaction since the listing
            continue
        complete = data[: data.rfind(b"\n") + 1] if path.name != LEGACY else data
        yield from decode_lines(source, str(path), complete.splitlines())


def compact(source: str, directory: Path, max_records: int, max_age_s: float, now: float) -> int:
    """Fold 0.1.0's file into day files, apply retention; return the files removed."""
    _fold_legacy(source, directory)
    removed = 0
    kept = 0
    files = day_files(directory)
    reference = age_reference(now, (path.name[:8] for path in files))
    for path in reversed(files):
        expired = day_expired(path.name[:8], reference, max_age_s)
        if expired or kept >= max_records:
            path.unlink(missing_ok=True)
            removed += 1
        else:
            kept += path.read_bytes().count(b"\n")
    return removed


def _fold_legacy(source: str, directory: Path) -> None:
    legacy = directory / LEGACY
    try:
        data = legacy.read_bytes()
    except FileNotFoundError:
        return
    by_day: dict[str, list[WaitRecord]] = {}
    damaged: list[bytes] = []
    for number, line in enumerate(data.splitlines(), start=1):
        record = decode_record(source, f"{legacy}:{number}", line) if line.strip() else None
        if record is not None:
            by_day.setdefault(day_of(record.ended_at), []).append(record)
        elif line.strip():
            damaged.append(line)
    for day, records in sorted(by_day.items()):
        append_lines(directory, day, records)
    if damaged:
        _set_aside(legacy.with_name(f"{LEGACY}.corrupt"), damaged)
    legacy.unlink()  # a crash before this only duplicates records, which reads collapse


def private(path: str | os.PathLike[str], flags: int) -> int:
    """Open ``path`` as the store's files are created: readable by their owner only (0600)."""
    return os.open(path, flags, PRIVATE_MODE)


def _set_aside(target: Path, lines: list[bytes]) -> None:
    with open(target, "ab", opener=private) as fh:  # blocking-ok: runs in the locked worker thread
        fh.write(b"".join(line + b"\n" for line in lines))
        fh.flush()
        os.fsync(fh.fileno())
    logger.warning("Moved %d damaged entries to %s", len(lines), target)
