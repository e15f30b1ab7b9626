"""Batched, off-loop filesystem checks for every file trigger on one event loop.

A poke must never block the triggerer's loop, yet one thread hop per check costs about six
times the CPU of the check itself (see ``shared/notes/baseline.md``).  So checks are queued and
run together: at most one batch is in a worker thread at a time; every check requested while
it runs joins the next batch.  An idle loop therefore answers a lone check at once, and a busy
one (thousands of triggers) pays one thread hop per batch instead of per check.  Identical
queries in one batch (many sensors waiting on one file) are checked once.
"""

from __future__ import annotations

import asyncio
import glob
import os
import stat
import weakref
from dataclasses import dataclass

from waitwise.triggers.events import FoundItem

MAX_FOUND = 100


@dataclass(frozen=True, slots=True)
class FileQuery:
    """One check: an absolute path or glob pattern, ``recursive`` as in :func:`glob.glob`."""

    pattern: str
    recursive: bool = False


def check(query: FileQuery) -> list[FoundItem]:
    """Return the files matching ``query`` (blocking: call it off the event loop).

    Same rule as Airflow's ``FileSensor``: a matching regular file counts, and so does a
    matching directory that holds at least one file somewhere below it.
    """
    if glob.has_magic(query.pattern):
        paths = glob.iglob(query.pattern, recursive=query.recursive)
    else:
        paths = iter((query.pattern,))
    found: list[FoundItem] = []
    for path in paths:
        found.extend(_files_at(path))
        if len(found) >= MAX_FOUND:
            return found[:MAX_FOUND]
    return found


def _files_at(path: str) -> list[FoundItem]:
    try:
        st = os.stat(path)  # blocking-ok: check_all runs in asyncio.to_thread
    except (FileNotFoundError, NotADirectoryError):
        return []
    if stat.S_ISREG(st.st_mode):
        return [FoundItem(path=path, size=st.st_size, mtime=st.st_mtime)]
    if stat.S_ISDIR(st.st_mode):
        for root, _dirs, files in os.walk(path):  # blocking-ok: off the loop (to_thread)
            if files:
                return _files_at(os.path.join(root, sorted(files)[0]))
    return []


def check_all(queries: list[FileQuery]) -> dict[FileQuery, list[FoundItem] | OSError]:
    """Check each distinct query once; an ``OSError`` is returned for its query, not raised."""
    results: dict[FileQuery, list[FoundItem] | OSError] = {}
    for query in queries:
        if query not in results:
            try:
                results[query] = check(query)
            except OSError as exc:
                results[query] = exc
    return results


class FileBatcher:
    """Queue checks from many triggers and run them in one worker thread per batch."""

    def __init__(self) -> None:
        self._pending: list[tuple[FileQuery, asyncio.Future[list[FoundItem]]]] = []
        self._running = False
        self._task: asyncio.Task[None] | None = None
        self.batches = 0

    async def check(self, query: FileQuery) -> list[FoundItem]:
        """Return what ``query`` finds; raise the ``OSError`` the check raised."""
        future: asyncio.Future[list[FoundItem]] = asyncio.get_running_loop().create_future()
        self._pending.append((query, future))
        if not self._running:
            self._running = True
            self._task = asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                self.batches += 1
                try:
                    results = await asyncio.to_thread(check_all, [q for q, _ in batch])
                except BaseException as exc:
                    _fail(batch, exc)
                    raise
                _resolve(batch, results)
        finally:
            self._running = False


def _resolve(
    batch: list[tuple[FileQuery, asyncio.Future[list[FoundItem]]]],
    results: dict[FileQuery, list[FoundItem] | OSError],
) -> None:
    for query, future in batch:
        if future.done():
            continue
        result = results[query]
        if isinstance(result, OSError):
            future.set_exception(result)
        else:
            future.set_result(result)


def _fail(
    batch: list[tuple[FileQuery, asyncio.Future[list[FoundItem]]]], exc: BaseException
) -> None:
    for _query, future in batch:
        if future.done():
            continue
        if isinstance(exc, asyncio.CancelledError):
            future.cancel()
        else:
            future.set_exception(exc)


_BATCHERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, FileBatcher] = (
    weakref.WeakKeyDictionary()
)


def batcher() -> FileBatcher:
    """Return the batcher of the running event loop (one per loop, created on first use)."""
    loop = asyncio.get_running_loop()
    found = _BATCHERS.get(loop)
    if found is None:
        found = _BATCHERS[loop] = FileBatcher()
    return found
