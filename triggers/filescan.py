"""Check many file queries in one pass: one directory listing serves every query on it.

Blocking by nature: everything here runs in a worker thread, once per hub tick for every file
query due (:class:`waitwise.triggers.file.FileProber`).

Pooling.  Queries whose directory part is a plain path (a file, or a glob on the file name
only, not ``recursive``) are grouped by that directory.  A directory holding a glob query, or
at least :data:`LIST_FROM` distinct plain paths, is listed once with :func:`os.scandir` and
every query on it is answered from that listing: a tick costs ``openat`` + ``getdents64`` (one
per ~1,000 names) + ``close``, plus one ``stat`` per file *found* (for its size and mtime),
however many sensors wait on the directory.  A directory with fewer plain paths is asked by
``stat`` per path, which is cheaper there (a listing costs as much as ~3 stats, and grows with
the directory).  Other queries (a glob in a directory part, ``recursive``) go through
:func:`glob.iglob` alone.  Identical queries are checked once.

Results follow Airflow's ``FileSensor`` rule (a regular file counts; so does a directory
holding a file somewhere below it) and glob's (``*`` does not match a leading ``.`` unless
the pattern's name starts with one; names sorted).  Files a directory's :class:`Unfinished`
hides (being written, as inotify saw them) are left out, so a file is reported once complete.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import stat
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any, Final

from waitwise.triggers.engine.progress import ProbeResult
from waitwise.triggers.errors import ProbeError
from waitwise.triggers.events import FoundItem

__all__ = [
    "LIST_FROM",
    "MAX_FOUND",
    "FileQuery",
    "Hidden",
    "Unfinished",
    "check",
    "check_all",
    "ready",
    "scan_directory",
    "settled",
    "shown",
]

MAX_FOUND: Final = 100
"""At most this many files are reported for one glob query (a batch member may ask more)."""

LIST_FROM: Final = 4
"""Distinct plain paths in one directory from which one listing beats a ``stat`` each."""


@dataclass(frozen=True, slots=True)
class Unfinished:
    """What an inotify watch on a directory knows of files not yet complete.

    :param writing: names written and not yet closed.
    :param completed: names closed after writing, renamed into place or linked, since
        ``since`` (the oldest are forgotten past a cap).
    :param since: when the watch began (epoch seconds).

    :meth:`hides` a file being written, and a file modified since the watch began whose
    completion the watch has not seen yet (its events not read yet, say): its close or
    rename will wake the waits on it.  A file older than the watch is reported as found.
    """

    writing: AbstractSet[str]
    completed: AbstractSet[str]
    since: float

    def hides(self, name: str, mtime: float) -> bool:
        """Return whether the file ``name``, modified at ``mtime``, must not be reported yet."""
        return name in self.writing or (mtime >= self.since and name not in self.completed)


Hidden = Mapping[str, Unfinished]
"""Per directory, what its watch knows of unfinished files."""


@dataclass(frozen=True, slots=True)
class FileQuery:
    """One check: an absolute path or glob pattern, ``recursive`` as in :func:`glob.glob`.

    :param confined_to: a real (symlink-free) directory every reported file must lie under
        once its own symlinks are resolved; ``None``: no confinement.
    :param limit: at most this many files are reported for a glob.
    :param detect: how arrivals are seen (``waitwise.triggers.file.DETECT_MODES``); not part
        of what is checked, so it is not part of ``key``.
    :param inactivity_s: a file is reported only once unmodified this long (:func:`settled`,
        applied to the check's result); not part of ``key`` either.

    ``magic`` (whether ``pattern`` is a glob), ``directory`` (the directory a listing can
    answer it from, ``None`` when none can) and ``key`` (what makes two queries the same
    check) are worked out once here, not on every poke.
    """

    pattern: str
    recursive: bool = False
    confined_to: str | None = None
    limit: int = MAX_FOUND
    detect: str = field(default="auto", compare=False)
    inactivity_s: float = field(default=0.0, compare=False)
    magic: bool = field(init=False, repr=False, compare=False)
    directory: str | None = field(init=False, repr=False, compare=False)
    key: tuple[str, bool, str | None, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        head, name = os.path.split(self.pattern)
        listable = bool(name) and not glob.has_magic(head) and not self.recursive
        object.__setattr__(self, "magic", glob.has_magic(self.pattern))
        object.__setattr__(self, "directory", head if listable else None)
        object.__setattr__(
            self, "key", (self.pattern, self.recursive, self.confined_to, self.limit)
        )

    def with_options(self, *, limit: int, detect: str, inactivity_s: float = 0.0) -> FileQuery:
        """Return this query with another ``limit``, ``detect`` and ``inactivity_s``."""
        return FileQuery(
            self.pattern, self.recursive, self.confined_to, limit, detect, inactivity_s
        )

    @property
    def name(self) -> str:
        """Return the file-name part of the pattern."""
        return os.path.basename(self.pattern)


def settled(found: list[FoundItem], inactivity_s: float, now: float) -> list[FoundItem]:
    """Return the files of ``found`` unmodified for ``inactivity_s`` at ``now`` (pure).

    Kept: ``mtime <= now - inactivity_s``.  Where no inotify watch sees a writer close its
    file (``detect="poll"``, network and FUSE filesystems), a file that has not changed for a
    while is the best sign it is complete; ``0`` keeps everything.
    """
    if inactivity_s <= 0.0:
        return found
    return [item for item in found if item["mtime"] <= now - inactivity_s]


def ready(
    queries: Sequence[FileQuery], results: Sequence[ProbeResult], now: float
) -> list[ProbeResult]:
    """Return ``results`` (one per query) with each query's :func:`settled` rule applied."""
    return [
        settled(r, q.inactivity_s, now) if isinstance(r, list) else r
        for q, r in zip(queries, results, strict=True)
    ]


def check(query: FileQuery) -> list[FoundItem]:
    """Return the files matching ``query`` on its own (blocking: call it off the event loop)."""
    if not query.magic:
        found = _files_at(query.pattern)
    else:
        found = []
        for path in glob.iglob(query.pattern, recursive=query.recursive):
            found.extend(_files_at(path))
            if len(found) >= query.limit:
                found = found[: query.limit]
                break
    return _confined(query, found)


Listings = dict[str, "dict[str, os.DirEntry[str]] | ProbeError"]
"""Directory listings by directory, as :func:`check_all` made them (to answer looks from)."""


def check_all(
    queries: Sequence[FileQuery],
    hidden: Hidden | None = None,
    *,
    listings: Listings | None = None,
) -> list[ProbeResult]:
    """Check each distinct query once, pooled by directory; results in the order of ``queries``.

    A failure is returned in place of its query's result, never raised: an ``OSError`` as a
    transient :class:`ProbeError` (a network filesystem hiccup, a permission being fixed),
    anything else as it is, which ends that wait alone (a path the filesystem cannot take,
    such as one holding a NUL byte or a character the filesystem encoding cannot encode).
    A directory that cannot be listed fails only the queries on it.

    ``listings``: directories listed already answer every query on them from that listing,
    and every listing made here is added to it.
    """
    hidden = hidden or {}
    listings = {} if listings is None else listings
    distinct = {query.key: query for query in queries}
    answers: dict[tuple[str, bool, str | None, int], ProbeResult] = {}
    for directory, members in _listed(list(distinct.values()), listings).items():
        listing = listings.get(directory)
        if listing is None:
            listing = listings[directory] = _list(directory)
        hide = hidden.get(directory)
        for query in members:
            if isinstance(listing, ProbeError):
                answers[query.key] = listing
            else:
                answers[query.key] = _guarded(_from_listing, query, listing, hide)
    for key, query in distinct.items():
        if key not in answers:
            answers[key] = _guarded(_alone, query, hidden.get(query.directory or ""))
    return [answers[query.key] for query in queries]


def scan_directory(directory: str) -> dict[str, os.DirEntry[str]] | ProbeError:
    """Return ``directory``'s entries by name (empty if it does not exist), or the error."""
    return _list(directory)


def _listed(queries: Sequence[FileQuery], listed: Listings) -> dict[str, list[FileQuery]]:
    """Return the queries answered by a listing, grouped by directory (see the module doc).

    A directory in ``listed`` (listed already) answers every query on it.
    """
    by_directory: dict[str, list[FileQuery]] = {}
    for query in queries:
        if query.directory is not None:
            by_directory.setdefault(query.directory, []).append(query)
    return {
        directory: members
        for directory, members in by_directory.items()
        if len(members) >= LIST_FROM or directory in listed or any(query.magic for query in members)
    }


def _list(directory: str) -> dict[str, os.DirEntry[str]] | ProbeError:
    try:
        with os.scandir(directory or os.curdir) as entries:  # blocking-ok: in a worker thread
            return {entry.name: entry for entry in entries}
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except OSError as exc:
        return ProbeError.wrapping(exc)


def _guarded(check_one: Callable[..., list[FoundItem]], *args: Any) -> ProbeResult:
    try:
        return check_one(*args)
    except OSError as exc:
        return ProbeError.wrapping(exc)
    except Exception as exc:  # this query's own failure: isolate it
        return exc


def _alone(query: FileQuery, hide: Unfinished | None) -> list[FoundItem]:
    return _shown(check(query), hide)


def shown(found: list[FoundItem], hide: Unfinished | None) -> list[FoundItem]:
    """Return ``found`` without the files ``hide`` hides (all of them when it is ``None``)."""
    return _shown(found, hide)


def _shown(found: list[FoundItem], hide: Unfinished | None) -> list[FoundItem]:
    if hide is None:
        return found
    return [f for f in found if not hide.hides(os.path.basename(f["path"]), f["mtime"])]


def _from_listing(
    query: FileQuery,
    listing: dict[str, os.DirEntry[str]],
    hide: Unfinished | None,
) -> list[FoundItem]:
    if b"\0" in os.fsencode(query.pattern):  # what os.stat would raise: the path cannot work
        raise ValueError(f"embedded null byte in {query.pattern!r}")
    name = query.name
    if not query.magic:
        entry = listing.get(name)
        return [] if entry is None else _shown(_confined(query, _files_of(entry)), hide)
    hidden_ok = name.startswith(".")
    found: list[FoundItem] = []
    for match in sorted(fnmatch.filter(listing, name)):
        if match.startswith(".") and not hidden_ok:
            continue
        found.extend(_shown(_files_of(listing[match]), hide))
        if len(found) >= query.limit:
            found = found[: query.limit]
            break
    return _confined(query, found)


def _files_of(entry: os.DirEntry[str]) -> list[FoundItem]:
    """Return what ``entry`` contributes (``stat`` follows symlinks, like :func:`os.stat`)."""
    try:
        st = entry.stat()  # blocking-ok: in a worker thread
    except (FileNotFoundError, NotADirectoryError):
        return []  # gone since it was listed, or a dangling symlink
    if stat.S_ISREG(st.st_mode):
        return [FoundItem(path=entry.path, size=st.st_size, mtime=st.st_mtime)]
    if stat.S_ISDIR(st.st_mode):
        return _files_at(entry.path)
    return []


def _files_at(path: str) -> list[FoundItem]:
    try:
        st = os.stat(path)  # blocking-ok: off the loop (a worker thread)
    except (FileNotFoundError, NotADirectoryError):
        return []
    if stat.S_ISREG(st.st_mode):
        return [FoundItem(path=path, size=st.st_size, mtime=st.st_mtime)]
    if stat.S_ISDIR(st.st_mode):
        for root, _dirs, files in os.walk(path):  # blocking-ok: off the loop (a worker thread)
            if files:
                return _files_at(os.path.join(root, sorted(files)[0]))
    return []


def _confined(query: FileQuery, found: list[FoundItem]) -> list[FoundItem]:
    if query.confined_to is None or not found:
        return found
    return [item for item in found if within(os.path.realpath(item["path"]), query.confined_to)]


def within(path: str, directory: str) -> bool:
    """Return whether ``path`` is ``directory`` or lies below it (both normalized)."""
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)
