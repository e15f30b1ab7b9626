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
from dataclasses import dataclass, field

from waitwise.triggers.events import FoundItem

MAX_FOUND = 100


@dataclass(frozen=True, slots=True)
class FileQuery:
    """One check: an absolute path or glob pattern, ``recursive`` as in :func:`glob.glob`.

    ``magic`` (whether ``pattern`` is a glob) and ``key`` (what makes two queries the same
    check) are worked out once here, not on every poke.
    """

    pattern: str
    recursive: bool = False
    magic: bool = field(init=False, repr=False, compare=False)
    key: tuple[str, bool] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "magic", glob.has_magic(self.pattern))
        object.__setattr__(self, "key", (self.pattern, self.recursive))


def check(query: FileQuery) -> list[FoundItem]:
    """Return the files matching ``query`` (blocking: call it off the event loop).

    Same rule as Airflow's ``FileSensor``: a matching regular file counts, and so does a
    matching directory that holds at least one file somewhere below it.
    """
    if not query.magic:
        return _files_at(query.pattern)
    found: list[FoundItem] = []
    paths = glob.iglob(query.pattern, recursive=query.recursive)
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


def check_all(queries: list[FileQuery]) -> list[list[FoundItem] | OSError]:
    """Check each distinct query once; return the results in the order of ``queries``.

    An ``OSError`` is returned in place of its query's result, not raised.
    """
    seen: dict[tuple[str, bool], list[FoundItem] | OSError] = {}
    results: list[list[FoundItem] | OSError] = []
    for query in queries:
        result = seen.get(query.key)
        if result is None:
            try:
                result = check(query)
            except OSError as exc:
                result = exc
            seen[query.key] = result
        results.append(result)
    return results
