"""Wait for files to land: glob patterns, ``recursive``, relative paths via an ``fs`` connection.

Filesystem checks block by nature, so they run off the event loop, in batches: one thread hop
costs about six times the CPU of the check itself (``shared/notes/baseline.md``), so the poll
hub hands every file query due in a tick to :func:`check_all` in one worker thread, and
identical queries (many sensors waiting on one file) are checked once.
"""

from __future__ import annotations

import asyncio
import glob
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from waitwise.triggers.base import PolicyTrigger, rebuilding
from waitwise.triggers.engine.probe import Prober
from waitwise.triggers.engine.progress import ProbeResult
from waitwise.triggers.errors import PolicyConfigError, ProbeError
from waitwise.triggers.events import FoundItem
from waitwise.triggers.spec import WaitSpec

__all__ = [
    "MAX_FOUND",
    "FileArrivalTrigger",
    "FileProber",
    "FileQuery",
    "check",
    "check_all",
    "check_conn_id",
    "check_filepath",
    "resolve_query",
]

MAX_FOUND = 100


@dataclass(frozen=True, slots=True)
class FileQuery:
    """One check: an absolute path or glob pattern, ``recursive`` as in :func:`glob.glob`.

    :param confined_to: a real (symlink-free) directory every reported file must lie under
        once its own symlinks are resolved; ``None``: no confinement.

    ``magic`` (whether ``pattern`` is a glob) and ``key`` (what makes two queries the same
    check) are worked out once here, not on every poke.
    """

    pattern: str
    recursive: bool = False
    confined_to: str | None = None
    magic: bool = field(init=False, repr=False, compare=False)
    key: tuple[str, bool, str | None] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "magic", glob.has_magic(self.pattern))
        object.__setattr__(self, "key", (self.pattern, self.recursive, self.confined_to))


def check(query: FileQuery) -> list[FoundItem]:
    """Return the files matching ``query`` (blocking: call it off the event loop).

    Same rule as Airflow's ``FileSensor``: a matching regular file counts, and so does a
    matching directory that holds at least one file somewhere below it.
    """
    if not query.magic:
        found = _files_at(query.pattern)
    else:
        found = []
        for path in glob.iglob(query.pattern, recursive=query.recursive):
            found.extend(_files_at(path))
            if len(found) >= MAX_FOUND:
                found = found[:MAX_FOUND]
                break
    if query.confined_to is None or not found:
        return found
    return [item for item in found if _within(os.path.realpath(item["path"]), query.confined_to)]


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
    if not _within(path, base):
        raise PolicyConfigError(
            f"filepath {filepath!r} leaves the base path {base!r} of connection {conn_id!r}; "
            "pass confine=False to allow it"
        )
    return FileQuery(path, recursive, os.path.realpath(base))  # blocking-ok: via to_thread


def _within(path: str, directory: str) -> bool:
    """Return whether ``path`` is ``directory`` or lies below it (both normalized)."""
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


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


def check_all(queries: Sequence[FileQuery]) -> list[ProbeResult]:
    """Check each distinct query once; return the results in the order of ``queries``.

    A failure is returned in place of its query's result, never raised: an ``OSError`` as a
    transient :class:`ProbeError` (a network filesystem hiccup, a permission being fixed),
    anything else as it is, which ends that wait alone (a path the filesystem cannot take,
    such as one holding a NUL byte or a character the filesystem encoding cannot encode).
    """
    seen: dict[tuple[str, bool, str | None], ProbeResult] = {}
    results: list[ProbeResult] = []
    for query in queries:
        result = seen.get(query.key)
        if result is None:
            try:
                result = check(query)
            except OSError as exc:
                result = ProbeError.wrapping(exc)
            except Exception as exc:  # this query's own failure: isolate it
                result = exc
            seen[query.key] = result
        results.append(result)
    return results


class FileProber:
    """The file kind's :class:`~waitwise.triggers.engine.probe.Prober`: one thread hop a batch."""

    async def probe_batch(self, queries: Sequence[FileQuery]) -> list[ProbeResult]:
        """Check ``queries`` in one worker thread (:func:`check_all`)."""
        return await asyncio.to_thread(check_all, queries)

    def __repr__(self) -> str:
        return "FileProber()"


class FileArrivalTrigger(PolicyTrigger):
    """Poll the filesystem for ``filepath`` off the event loop, in batches shared by all waits.

    :param filepath: a path or glob pattern; a relative one is joined to the ``path`` extra of
        the ``fs_conn_id`` connection, as Airflow's ``FileSensor`` does.
    :param fs_conn_id: the ``fs`` connection used for relative paths.
    :param recursive: let ``**`` match any depth (:func:`glob.glob`'s ``recursive``).
    :param confine: keep a relative ``filepath`` inside the connection's base path: one that
        climbs out of it (``../..``) ends the wait as an error, and a file reached through a
        symlink pointing outside it is not reported.  ``False`` lifts both rules.
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
        **wait: Any,
    ) -> None:
        with rebuilding(type(self)):
            super().__init__(WaitSpec.from_config(wait))
            self.filepath = check_filepath(filepath)
            check_conn_id("fs_conn_id", fs_conn_id)
            for name, flag in (("recursive", recursive), ("confine", confine)):
                if not isinstance(flag, bool):
                    raise PolicyConfigError(f"{name} must be True or False, got {flag!r}")
        self.fs_conn_id = fs_conn_id
        self.recursive = recursive
        self.confine = confine
        self._query: FileQuery | None = None

    def kind_kwargs(self) -> dict[str, Any]:
        """Return the file kind's kwargs."""
        return {
            "filepath": self.filepath,
            "fs_conn_id": self.fs_conn_id,
            "recursive": self.recursive,
            "confine": self.confine,
        }

    def describe(self) -> str:
        """Return the path waited for."""
        return self._query.pattern if self._query else self.filepath

    async def prepare(self) -> FileQuery:
        """Resolve a relative ``filepath`` through the ``fs`` connection (async API).

        :raises PolicyConfigError: a confined relative path that climbs out of the base path.
        """
        if os.path.isabs(self.filepath):  # nothing to resolve: no thread hop
            self._query = FileQuery(self.filepath, self.recursive)
            return self._query
        base = await self._base_path()
        self._query = await asyncio.to_thread(
            resolve_query,
            self.filepath,
            base,
            recursive=self.recursive,
            confine=self.confine,
            conn_id=self.fs_conn_id,
        )
        return self._query

    async def _base_path(self) -> str:
        from airflow.sdk import BaseHook

        conn = await BaseHook.aget_connection(self.fs_conn_id)
        return str(conn.extra_dejson.get("path", ""))


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


def check_filepath(filepath: object) -> str:
    """Return ``filepath`` if it is a non-empty string, else raise naming it."""
    if not isinstance(filepath, str) or not filepath.strip():
        raise PolicyConfigError(f"filepath must be a non-empty string, got {filepath!r}")
    return filepath
