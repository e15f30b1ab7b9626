"""Wait for files to land: glob patterns, ``recursive``, relative paths via an ``fs`` connection.

Filesystem checks block by nature, so they run off the event loop, in batches: one thread hop
costs about six times the CPU of the check itself (``shared/notes/baseline.md``), so the poll
hub hands every file query due in a tick to :class:`FileProber`, which checks them all in one
worker thread (:func:`~waitwise.triggers.filescan.check_all`: one listing per directory serves
every sensor waiting on it, identical queries are checked once).

Event-driven detection (``detect``): on a local filesystem the prober also subscribes each
wait to inotify events on its directories (:mod:`waitwise.triggers.notify`), and a file closed
after writing or renamed into place wakes the waits on that directory at once; the policy's
schedule goes on as a safety poll (inotify can overflow).  Files still being written, as
inotify saw them, are never reported.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Awaitable, Callable, Collection, Hashable, Mapping, Sequence
from typing import Any, ClassVar, Final, Protocol

from waitwise.triggers import runtime
from waitwise.triggers.base import PolicyTrigger, rebuilding
from waitwise.triggers.engine.probe import Prober
from waitwise.triggers.engine.progress import ProbeResult
from waitwise.triggers.errors import PolicyConfigError
from waitwise.triggers.filescan import (
    MAX_FOUND,
    FileQuery,
    Listings,
    Unfinished,
    check,
    check_all,
    ready,
    scan_directory,
    shown,
    within,
)
from waitwise.triggers.objectstore import (
    OBJECT_PROBER,
    ObjectQuery,
    ObjectUrl,
    check_location,
    object_query,
)
from waitwise.triggers.spec import WaitSpec

__all__ = [
    "DETECT_MODES",
    "MAX_FOUND",
    "FileArrivalTrigger",
    "FileProber",
    "FileQuery",
    "QueryGroup",
    "check",
    "check_all",
    "check_conn_id",
    "check_detect",
    "check_file_options",
    "check_filepath",
    "check_inactivity",
    "fs_base_path",
    "inactivity_kwargs",
    "resolve_queries",
    "resolve_query",
]

log = logging.getLogger(__name__)

DETECT_MODES: Final = ("auto", "events", "poll")
"""``auto``: inotify where the filesystem can notify, else polling; ``events``: inotify even
where it cannot (network and FUSE filesystems: only changes made on this machine are seen);
``poll``: the policy's schedule alone."""


class QueryGroup(Protocol):
    """Several file queries answered together, such as a batch sensor's set of files.

    The prober checks ``members`` with every other file query due in the tick and hands the
    member results back to :meth:`combine`, which returns the group's one result.
    """

    members: tuple[FileQuery, ...]
    detect: str

    def combine(self, results: Sequence[ProbeResult]) -> ProbeResult:
        """Return the group's result from its members' (in the order of ``members``)."""
        ...


def resolve_query(
    filepath: str, base: str, *, recursive: bool, confine: bool, conn_id: str
) -> FileQuery:
    """Return the query for ``filepath``; a relative one is joined to ``base`` (blocking).

    With ``confine``, a relative path must stay under ``base`` once ``..`` is resolved, and
    files found through symlinks count only if they resolve under ``base`` too.  The sync
    ``poke`` path and the trigger share this rule.

    :raises PolicyConfigError: a confined relative path that climbs out of ``base``.
    """
    if os.path.isabs(filepath):
        return FileQuery(filepath, recursive)
    base = os.path.normpath(base or os.sep)
    path = os.path.normpath(os.path.join(base, filepath))
    if not confine:
        return FileQuery(path, recursive)
    if not within(path, base):
        raise PolicyConfigError(
            f"filepath {filepath!r} leaves the base path {base!r} of connection {conn_id!r}; "
            "pass confine=False to allow it"
        )
    return FileQuery(path, recursive, os.path.realpath(base))  # blocking-ok: via to_thread


class FileProber:
    """The file kind's :class:`~waitwise.triggers.engine.probe.Prober`: one thread hop a batch.

    Takes :class:`FileQuery` and :class:`QueryGroup` queries alike, so a batch sensor's files
    share the tick's listings with every single-file sensor on the same directories.
    """

    def __init__(self) -> None:
        self._mtimes: dict[str, int] = {}  # directory -> st_mtime_ns when last asked

    async def probe_batch(self, queries: Sequence[FileQuery | QueryGroup]) -> list[ProbeResult]:
        """Check ``queries`` in one worker thread (:func:`check_all`)."""
        results, _ = await self.probe_pooled(queries, ())
        return results

    def share_keys(self, query: FileQuery | QueryGroup) -> tuple[str, ...]:
        """Return the directories a listing answers ``query`` from."""
        return tuple(sorted({m.directory for m in _members(query) if m.directory is not None}))

    async def probe_pooled(
        self, queries: Sequence[FileQuery | QueryGroup], shared: Collection[Hashable]
    ) -> tuple[list[ProbeResult], Listings]:
        """Check ``queries``; also return the ``shared`` directories changed since asked.

        Each changed directory comes with its listing, which :meth:`look` answers the other
        waits on it from.  One worker thread for both.  A directory has changed when its
        ``st_mtime_ns`` differs from the last time it was asked (read before it is listed, so
        a file landing in between shows at the next tick): adding, removing or renaming an
        entry changes it.  A directory under an inotify watch is never reported: its events
        wake the very waits whose files completed.
        """
        flat = [m for query in queries for m in _members(query)]
        hidden = _hidden({q.directory for q in flat if q.directory is not None})
        gate = [d for d in shared if isinstance(d, str) and d not in hidden]
        answered, changed = await asyncio.to_thread(_check_and_gate, flat, gate, self._mtimes)
        return _combine(queries, _ready(flat, _unhidden(flat, answered, hidden))), changed

    async def look(
        self, queries: Sequence[FileQuery | QueryGroup], changed: Mapping[Hashable, Any]
    ) -> list[ProbeResult | None]:
        """Answer waits that are not due from ``changed``, :meth:`probe_pooled`'s listings.

        The same listings the due waits were answered from (no new listing; a ``stat`` per
        file found): found items count, anything else is ``None``.
        """
        flat = [m for query in queries for m in _members(query)]
        hidden = _hidden({q.directory for q in flat if q.directory is not None})
        listings: Listings = {d: v for d, v in changed.items() if isinstance(d, str)}
        answered = await asyncio.to_thread(_answer_from, flat, listings)
        results = _combine(queries, _ready(flat, _unhidden(flat, answered, hidden)))
        return [r if isinstance(r, list) and r else None for r in results]

    async def subscribe(
        self, query: FileQuery | QueryGroup, wake: Callable[[], None]
    ) -> Callable[[], None] | None:
        """Call ``wake`` when a file ``query`` matches lands; return the undo.

        One subscription per directory and name pattern of the query: an event for another
        name in the directory does not wake this wait.

        ``None`` when events are off for it: ``detect="poll"``, no directory a listing can
        answer from (a glob in a directory part, ``recursive``), or the directories cannot
        notify (see :meth:`waitwise.triggers.notify.DirectoryEvents.subscribe`).
        """
        mode = getattr(query, "detect", "auto")
        members = _members(query)
        watched = sorted({(m.directory, m.name) for m in members if m.directory is not None})
        if mode == "poll" or not watched:
            return None
        try:
            from waitwise.triggers.notify import events_for_loop
        except ImportError:  # not Linux: asyncinotify is not installed
            return None
        events = events_for_loop()
        subs = [await events.asubscribe(d, wake, mode, name) for d, name in watched]  # type: ignore[arg-type]
        live = [sub for sub in subs if sub is not None]
        if not live:
            return None

        def undo() -> None:
            for sub in live:
                sub.close()

        return undo

    def __repr__(self) -> str:
        return "FileProber()"


def _members(query: FileQuery | QueryGroup) -> tuple[FileQuery, ...]:
    return (query,) if isinstance(query, FileQuery) else query.members


def _combine(
    queries: Sequence[FileQuery | QueryGroup], results: Sequence[ProbeResult]
) -> list[ProbeResult]:
    """Fold the member results of ``queries`` (flattened in order) into one result each."""
    out: list[ProbeResult] = []
    at = 0
    for query in queries:
        if isinstance(query, FileQuery):
            out.append(results[at])
            at += 1
        else:
            n = len(query.members)
            out.append(query.combine(results[at : at + n]))
            at += n
    return out


def _check_and_gate(
    flat: list[FileQuery], gate: list[str], mtimes: dict[str, int]
) -> tuple[list[ProbeResult], Listings]:
    """Return ``flat``'s results and the ``gate`` directories that changed, with listings.

    Blocking (a worker thread).  Each directory is listed once for both.
    """
    changed: set[str] = set()
    for directory in gate:
        try:
            mtime = os.stat(directory or os.curdir).st_mtime_ns  # blocking-ok: worker thread
        except OSError:
            continue  # no look there: the waits' own pokes will meet the error
        if mtimes.get(directory) != mtime:
            mtimes[directory] = mtime
            changed.add(directory)
    listings: Listings = {}
    results = check_all(flat, listings=listings)
    for directory in gate:  # listed for the looks even where the due waits needed a stat
        if directory in changed and directory not in listings:
            listings[directory] = scan_directory(directory)
    return results, {d: v for d, v in listings.items() if d in changed}


def _answer_from(flat: list[FileQuery], listings: Listings) -> list[ProbeResult]:
    """Answer ``flat`` from ``listings`` only (a query elsewhere: nothing to say)."""
    known = [q for q in flat if q.directory in listings]
    answers = dict(zip((q.key for q in known), check_all(known, listings=listings), strict=True))
    return [answers.get(q.key, []) for q in flat]


def _unhidden(
    flat: list[FileQuery], answered: list[ProbeResult], hidden: dict[str, Unfinished]
) -> list[ProbeResult]:
    """Leave out files still being written (on the loop: the watch's live view)."""
    if not hidden:
        return answered
    return [
        shown(r, hidden.get(q.directory or "")) if isinstance(r, list) else r
        for q, r in zip(flat, answered, strict=True)
    ]


def _ready(flat: list[FileQuery], answered: list[ProbeResult]) -> list[ProbeResult]:
    """Leave out files modified within their query's ``inactivity_s`` (:func:`settled`)."""
    if not any(q.inactivity_s for q in flat):
        return answered
    return ready(flat, answered, runtime.current().clock.now())


def _hidden(directories: set[str]) -> dict[str, Unfinished]:
    """Return, per watched directory, what inotify knows of unfinished files (on the loop)."""
    try:
        from waitwise.triggers.notify import events_for_loop
    except ImportError:
        return {}
    events = events_for_loop()
    found = {d: events.unfinished(d) for d in directories}
    return {d: unfinished for d, unfinished in found.items() if unfinished is not None}


class FileArrivalTrigger(PolicyTrigger):
    """Poll the filesystem for ``filepath`` off the event loop, in batches shared by all waits.

    :param filepath: a path or glob pattern; a relative one is joined to the ``path`` extra of
        the ``fs_conn_id`` connection, as Airflow's ``FileSensor`` does.  A URL with a scheme
        other than ``file://`` (``s3://bucket/in/*.csv``) waits for an object in a store
        (:mod:`waitwise.triggers.objectstore`; ``recursive``, ``confine`` and ``detect`` do
        not apply there).
    :param conn_id: the connection of an object URL (default: the scheme's, ``aws_default``).
    :param fs_conn_id: the ``fs`` connection used for relative paths.
    :param recursive: let ``**`` match any depth (:func:`glob.glob`'s ``recursive``).
    :param confine: keep a relative ``filepath`` inside the connection's base path: one that
        climbs out of it (``../..``) ends the wait as an error, and a file reached through a
        symlink pointing outside it is not reported.  ``False`` lifts both rules.
    :param detect: how arrivals are seen, one of :data:`DETECT_MODES` (default ``auto``).
    :param inactivity_period: report a file only once it has not been modified for this many
        seconds (as Airflow's ``GCSUploadSessionCompleteSensor`` names it): where no inotify
        watch sees the writer close it (``detect="poll"``, network and FUSE filesystems),
        polling cannot tell a file still being written.  ``0`` (default): at once.  Local
        paths only.
    :param wait: the :class:`~waitwise.triggers.spec.WaitSpec` fields (``poll``, ``timeout``,
        ...), as :meth:`WaitSpec.to_config` writes them; an unknown one is an error.

    Rebuilt from a damaged row, the constructor raises only ``TypeError``
    (:class:`~waitwise.triggers.errors.TriggerArgumentError`).
    """

    prober: ClassVar[Prober] = FileProber()

    def __init__(
        self,
        *,
        filepath: str,
        fs_conn_id: str = "fs_default",
        recursive: bool = False,
        confine: bool = True,
        detect: str = "auto",
        conn_id: str | None = None,
        inactivity_period: float = 0.0,
        **wait: Any,
    ) -> None:
        with rebuilding(type(self)):
            super().__init__(WaitSpec.from_config(wait))
            self.filepath = check_filepath(filepath)
            check_file_options(
                fs_conn_id, recursive=recursive, confine=confine, detect=detect, conn_id=conn_id
            )
            where = check_location("filepath", filepath, conn_id)
            inactivity = check_inactivity(inactivity_period, [where])
        self.fs_conn_id = fs_conn_id
        self.recursive = recursive
        self.confine = confine
        self.detect = detect
        self.conn_id = conn_id
        self.inactivity_period = inactivity
        self._query: FileQuery | ObjectQuery | None = None
        if isinstance(where, ObjectUrl):  # this wait's kind is the object store's
            self.prober = OBJECT_PROBER  # type: ignore[misc]  # the engine reads self.prober

    def kind_kwargs(self) -> dict[str, Any]:
        """Return the file kind's kwargs.

        ``detect`` and ``inactivity_period`` only when not the defaults: rows of sensors
        that do not set them stay as the releases before them wrote them.
        """
        return {
            "filepath": self.filepath,
            "fs_conn_id": self.fs_conn_id,
            "recursive": self.recursive,
            "confine": self.confine,
            **({"detect": self.detect} if self.detect != "auto" else {}),
            **({"conn_id": self.conn_id} if self.conn_id is not None else {}),
            **inactivity_kwargs(self.inactivity_period),
        }

    def describe(self) -> str:
        """Return the path waited for."""
        return self._query.pattern if self._query else self.filepath

    async def prepare(self) -> FileQuery | ObjectQuery:
        """Resolve a relative ``filepath`` through the ``fs`` connection (async API).

        An object URL (``filepath`` as rendered) gets its connection's client built.

        :raises PolicyConfigError: a confined relative path that climbs out of the base path.
        """
        where = check_location("filepath", self.filepath, self.conn_id)
        if isinstance(where, ObjectUrl):
            self._query = await object_query(where, self.conn_id, MAX_FOUND)
            return self._query
        (self._query,) = await resolve_queries(
            [where],
            self._base_path,
            recursive=self.recursive,
            confine=self.confine,
            detect=self.detect,
            conn_id=self.fs_conn_id,
            inactivity_s=self.inactivity_period,
        )
        return self._query

    async def _base_path(self) -> str:
        return await fs_base_path(self.fs_conn_id)


async def fs_base_path(fs_conn_id: str) -> str:
    """Return the ``path`` extra of the ``fs`` connection ``fs_conn_id`` (async API)."""
    from airflow.sdk import BaseHook

    conn = await BaseHook.aget_connection(fs_conn_id)
    return str(conn.extra_dejson.get("path", ""))


async def resolve_queries(
    filepaths: Sequence[str],
    base_path: Callable[[], Awaitable[str]],
    *,
    recursive: bool,
    confine: bool,
    detect: str,
    conn_id: str,
    limit: int = MAX_FOUND,
    inactivity_s: float = 0.0,
) -> list[FileQuery]:
    """Return the queries for ``filepaths`` (:func:`resolve_query`'s rules), off the loop.

    Absolute paths cost nothing; relative ones read the base path once (``base_path``: the
    ``fs`` connection's, :func:`fs_base_path`) and are resolved together in one worker thread.
    """
    if all(os.path.isabs(path) for path in filepaths):  # nothing to resolve: no thread hop
        return [FileQuery(path, recursive, None, limit, detect, inactivity_s) for path in filepaths]
    base = await base_path()

    def resolve_all() -> list[FileQuery]:
        return [
            resolve_query(
                path, base, recursive=recursive, confine=confine, conn_id=conn_id
            ).with_options(limit=limit, detect=detect, inactivity_s=inactivity_s)
            for path in filepaths
        ]

    return await asyncio.to_thread(resolve_all)


_CONN_ID = re.compile(r"[A-Za-z0-9_.-]{1,250}")


def check_conn_id(name: str, conn_id: object) -> str:
    """Return ``conn_id`` if it has the form of an Airflow connection id, else raise naming it.

    Only the form is checked: looking the connection up while a DAG is parsed would be
    database access at the top level of a DAG file.
    """
    if not isinstance(conn_id, str) or not _CONN_ID.fullmatch(conn_id):
        raise PolicyConfigError(
            f"{name} must be a connection id (letters, digits, '_', '-', '.'), got {conn_id!r}"
        )
    return conn_id


def check_file_options(
    fs_conn_id: object,
    *,
    recursive: object,
    confine: object,
    detect: object,
    conn_id: object = None,
) -> None:
    """Check the options every file trigger and sensor shares; raise naming the bad one."""
    check_conn_id("fs_conn_id", fs_conn_id)
    if conn_id is not None:
        check_conn_id("conn_id", conn_id)
    for name, flag in (("recursive", recursive), ("confine", confine)):
        if not isinstance(flag, bool):
            raise PolicyConfigError(f"{name} must be True or False, got {flag!r}")
    check_detect(detect)


def check_inactivity(inactivity_period: object, where: Sequence[object]) -> float:
    """Return ``inactivity_period`` if it is a finite number of seconds >= 0, else raise.

    Non-zero only for local paths: an object store writes whole objects (``where``: the
    checked locations, :func:`~waitwise.triggers.objectstore.check_location`'s results).
    """
    value = inactivity_period
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e7:
        raise PolicyConfigError(
            "inactivity_period must be a number of seconds, 0 <= x < 1e7, "
            f"got {inactivity_period!r}"
        )
    if value and any(isinstance(w, ObjectUrl) for w in where):
        raise PolicyConfigError(
            f"inactivity_period applies to filesystem paths, not object URLs (a store writes "
            f"whole objects), got {inactivity_period!r}"
        )
    return float(value)


def inactivity_kwargs(inactivity_period: float) -> dict[str, float]:
    """Return ``{"inactivity_period": x}`` when set: unset, rows stay as before it existed."""
    return {"inactivity_period": inactivity_period} if inactivity_period else {}


def check_detect(detect: object) -> str:
    """Return ``detect`` if it is one of :data:`DETECT_MODES`, else raise naming it."""
    if detect not in DETECT_MODES:
        raise PolicyConfigError(f"detect must be one of {', '.join(DETECT_MODES)}, got {detect!r}")
    return detect


def check_filepath(filepath: object) -> str:
    """Return ``filepath`` if it is a non-empty string, else raise naming it."""
    if not isinstance(filepath, str) or not filepath.strip():
        raise PolicyConfigError(f"filepath must be a non-empty string, got {filepath!r}")
    return filepath
