"""Filesystem checks, blocking by nature: run them off the event loop, in batches.

A poke must never block the triggerer's loop, yet one thread hop per check costs about six
times the CPU of the check itself (see ``shared/notes/baseline.md``).  So the poll hub
(:mod:`waitwise.triggers._hub`) hands every query due in a tick to :func:`check_all` in one
worker thread; identical queries (many sensors waiting on one file) are checked once.
"""

from __future__ import annotations

import glob
import os
import stat
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
