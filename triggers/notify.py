"""Event-driven detection of complete files: inotify, one watch per directory, shared per loop.

A wait subscribes to its directory and is called back when a file there becomes *complete*:
closed by a writer (``IN_CLOSE_WRITE``) or renamed into place (``IN_MOVED_TO``).  It then
checks at once instead of at its next poll; :meth:`DirectoryEvents.writing` names the files
still being written, so a check never reports one early.  Events say *when to look*, never
*what was found*: callers keep polling as the backstop (events can be lost, see below).

Why asyncinotify and not watchfiles: watchfiles reports only added / modified / deleted,
debounced over 1.6 s, so "closed after writing" and "renamed into place" look like any
"modified", and a file being written cannot be told from a complete one.  asyncinotify hands
over inotify's raw events, each with its mask, on the asyncio loop (``loop.add_reader`` on
the inotify fd, no thread).

Sharing: one :class:`DirectoryEvents` per event loop (:func:`events_for_loop`) owns one
inotify instance, one watch per directory (by real path) whatever its number of subscribers,
and one reader task, which runs only while a watch exists.  Callbacks are coalesced: the
events read in one loop iteration call each subscriber of a directory at most once, in the
next iteration (``loop.call_soon``: microseconds later unless the loop is busy).

Where inotify is blind: changes made by other machines on a network or FUSE filesystem
(NFS, SMB, sshfs, s3fs...) raise no event here, so mode ``"auto"`` watches only where
:func:`can_notify` finds a local filesystem (:mod:`waitwise.triggers.mounts`, re-exported
here).  A file published with ``link()`` or ``symlink()`` raises only ``IN_CREATE``: no
callback, the poll finds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fnmatch
import functools
import glob
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal

from waitwise.triggers.filescan import Unfinished
from waitwise.triggers.mounts import (
    MOUNTINFO,
    REMOTE_FSTYPES,
    can_notify,
    fstype_of,
    is_remote_fstype,
    log_once,
    read_mountinfo,
)

if TYPE_CHECKING:
    from asyncinotify import Inotify, Mask, Watch

__all__ = [
    "MODES",
    "MOUNTINFO",
    "REMOTE_FSTYPES",
    "WATCH_MASK",
    "WRITING_CAP",
    "DirectoryEvents",
    "Mode",
    "Subscription",
    "can_notify",
    "events_for_loop",
    "fstype_of",
    "is_remote_fstype",
    "read_mountinfo",
]

log = logging.getLogger(__name__)

Mode = Literal["auto", "events", "poll"]
MODES: Final[tuple[str, ...]] = ("auto", "events", "poll")
WRITING_CAP: Final = 10_000
_CACHE_CAP: Final = 10_000  # resolved spellings / filesystem answers kept per loop
_READ_EVENTS: Final = 64  # full-size events per read(2); short ones pack ~8x more

# inotify(7) bits (kernel ABI; a test checks them against asyncinotify.Mask).  Plain ints:
# bit tests on IntFlag members build enum members, and this runs once per event.
_MODIFY, _CLOSE_WRITE, _OPEN, _MOVED_FROM, _MOVED_TO = 0x2, 0x8, 0x20, 0x40, 0x80
_CREATE, _DELETE, _DELETE_SELF, _MOVE_SELF = 0x100, 0x200, 0x400, 0x800
_UNMOUNT, _Q_OVERFLOW, _IGNORED, _ONLYDIR, _ISDIR = 0x2000, 0x4000, 0x8000, 0x1000000, 0x40000000
# IN_OPEN beyond the brief's list: a name enters writing() on IN_CREATE only when its
# IN_OPEN follows at once (open(O_CREAT)); link() and symlink() raise IN_CREATE alone and
# no IN_CLOSE_WRITE ever, so counting a bare IN_CREATE would hide such a file for good.
WATCH_MASK: Final = (
    _CLOSE_WRITE | _MOVED_TO | _CREATE | _MODIFY | _DELETE | _MOVED_FROM | _OPEN
) | (_DELETE_SELF | _MOVE_SELF)
_COMPLETE: Final = _CLOSE_WRITE | _MOVED_TO
_NOT_WRITING: Final = _CLOSE_WRITE | _MOVED_TO | _DELETE | _MOVED_FROM
_GONE: Final = _DELETE_SELF | _MOVE_SELF | _UNMOUNT | _IGNORED

_REFUSALS: Final[dict[str, tuple[int, str]]] = {
    "poll": (logging.INFO, "mode 'poll' (first: %s): such waits poll only"),
    "remote": (logging.INFO, "%s is on a network or FUSE filesystem: waits there poll only"),
    "missing": (logging.INFO, "%s does not exist yet: its waits poll until it does"),
    "not-a-directory": (logging.INFO, "%s is not a directory: its waits poll only"),
    "denied": (logging.WARNING, "no permission to watch %s: its waits poll only"),
    "limit": (logging.WARNING, "inotify limit hit (%s; sysctl fs.inotify.*): waits poll only"),
    "unavailable": (logging.WARNING, "inotify is unavailable (%s): file waits poll only"),
    "error": (logging.WARNING, "cannot watch %s: its waits poll only"),
    "failed": (logging.WARNING, "inotify reader failed earlier (%s): waits poll only"),
    "closed": (logging.INFO, "DirectoryEvents closed (%s): waits poll only"),
}
_ERRNO_REASONS: Final = {
    errno.ENOENT: "missing",
    errno.ENOTDIR: "not-a-directory",
    errno.EACCES: "denied",
    errno.ENOSPC: "limit",
    errno.EMFILE: "limit",
    errno.ENFILE: "limit",
    errno.ENOSYS: "unavailable",
}


def _log_once(key: str, level: int, msg: str, *args: object) -> None:
    """Log ``msg`` once per process (:func:`waitwise.triggers.mounts.log_once`)."""
    log_once(log, key, level, msg, *args)


def _resolve(directory: str, check: Callable[[str], bool] | None) -> tuple[str, bool | None]:
    """Return ``directory``'s real path and, with ``check``, whether events work there."""
    real = os.path.realpath(directory)
    return real, None if check is None else check(real)


@dataclass(eq=False, slots=True)
class _Dir:
    """One watched directory (one inotify watch): its subscribers and its names in writing."""

    wd: int
    watch: Watch
    paths: set[str]  # real paths of this inode (two if bind-mounted)
    spellings: set[str] = field(default_factory=set)
    callbacks: dict[Subscription, Callable[[], None]] = field(default_factory=dict)
    by_pattern: dict[str | None, set[Subscription]] = field(default_factory=dict)
    globs: set[str | None] = field(default_factory=set)  # patterns not a plain name (or None)
    writing: set[str] = field(default_factory=set)
    completed: dict[str, None] = field(default_factory=dict)  # an ordered set, oldest first
    since: float = field(default_factory=time.time)  # when the watch began (wall clock)
    created: str | None = None  # the last IN_CREATE's name, until the next event
    pending: bool = False
    woken_all: bool = False  # overflow, or the directory itself went: every subscriber
    woken: set[str] = field(default_factory=set)  # names completed since the last flush

    def note(self, mask: int, name: str, cap: int) -> bool:
        """Track whether ``name`` is being written; return True if ``cap`` forced a clear.

        A name is *completed* on ``IN_CLOSE_WRITE`` / ``IN_MOVED_TO``, and on a bare
        ``IN_CREATE`` (``link()``, ``symlink()``) until an ``IN_OPEN`` says it is written.
        """
        created, self.created = self.created, name if mask & _CREATE else None
        if mask & (_COMPLETE | _CREATE):
            self._complete(name, cap)
        if mask & _NOT_WRITING:
            self.writing.discard(name)
            if mask & (_DELETE | _MOVED_FROM):
                self.completed.pop(name, None)
        elif mask & _MODIFY or (mask & _OPEN and name == created):
            self.completed.pop(name, None)
            overflow = len(self.writing) >= cap and name not in self.writing
            if overflow:
                self.writing.clear()
            self.writing.add(name)
            return overflow
        return False

    def _complete(self, name: str, cap: int) -> None:
        self.completed.pop(name, None)
        self.completed[name] = None
        if len(self.completed) > cap:  # forget the oldest: they were reported long ago
            del self.completed[next(iter(self.completed))]


class _Matcher:
    """Whether a subscriber's pattern matches one of a flush's names (cached per pattern)."""

    __slots__ = ("_cache", "_names")

    def __init__(self, names: set[str]) -> None:
        self._names, self._cache = names, dict[str | None, bool]()

    def __call__(self, pattern: str | None) -> bool:
        found = self._cache.get(pattern)
        if found is None:
            if pattern is None:
                found = bool(self._names)
            elif not glob.has_magic(pattern):
                found = pattern in self._names
            else:
                hidden_ok = pattern.startswith(".")
                found = any(
                    fnmatch.fnmatchcase(n, pattern) and (hidden_ok or not n.startswith("."))
                    for n in self._names
                )
            self._cache[pattern] = found
        return found


class Subscription:
    """One callback on one directory's events; :meth:`close` it when the wait ends."""

    __slots__ = ("_dir", "_owner", "pattern")

    def __init__(self, owner: DirectoryEvents, watched: _Dir, pattern: str | None = None) -> None:
        self._owner: DirectoryEvents | None = owner
        self._dir = watched
        self.pattern = pattern

    def close(self) -> None:
        """Stop the callbacks (idempotent); the directory's last subscriber removes its watch."""
        owner, self._owner = self._owner, None
        if owner is not None:
            owner._leave(self, self._dir)


class DirectoryEvents:
    """One per event loop: one inotify instance, one watch per directory, shared by all.

    Loop-confined: call every method on the loop it serves.

    :param notifiable: whether events work in a directory (:func:`can_notify`; blocking).
    :param writing_cap: most names :meth:`writing` tracks per directory; past it the set is
        cleared (logged once): a possible early report rather than unbounded memory.
    """

    def __init__(
        self, *, notifiable: Callable[[str], bool] = can_notify, writing_cap: int = WRITING_CAP
    ) -> None:
        self._notifiable, self._cap = notifiable, writing_cap
        self._inotify: Inotify | None = None
        self._mask: Mask | None = None
        self._task: asyncio.Task[None] | None = None
        self._dirs: dict[str, _Dir] = {}  # real path -> its watch
        self._by_wd: dict[int, _Dir] = {}
        self._real: dict[str, str] = {}  # spelling -> real path
        self._local: dict[str, bool] = {}  # real path -> notifiable
        self._pending: list[_Dir] = []
        self._flush_handle: asyncio.Handle | None = None
        self._unusable: str | None = None  # "closed", "failed" or "unavailable"

    @property
    def watch_count(self) -> int:
        """Return the number of inotify watches held."""
        return len(self._by_wd)

    @property
    def watched_directories(self) -> frozenset[str]:
        """Return the real paths watched."""
        return frozenset(self._dirs)

    @property
    def closed(self) -> bool:
        """Return whether :meth:`close` was called."""
        return self._unusable == "closed"

    def subscribe(
        self,
        directory: str,
        callback: Callable[[], None],
        mode: Mode = "auto",
        pattern: str | None = None,
    ) -> Subscription | None:
        """Call ``callback()`` when a file in ``directory`` becomes complete; None: poll only.

        ``callback`` runs on the loop, never raising into the reader (logged): at most once per
        loop iteration after ``IN_CLOSE_WRITE`` or ``IN_MOVED_TO`` there of a name matching
        ``pattern`` (a file name or an :mod:`fnmatch` glob; ``None``: any name); after a queue
        overflow (every subscriber of every directory: events were lost); and when the
        directory itself is deleted, moved or unmounted (its watch is then dropped; a later
        subscribe re-creates it).

        None (each reason logged once per process) for mode ``"poll"``; for ``"auto"`` where
        :func:`can_notify` is False (``"events"`` forces inotify there); without inotify; at
        an inotify limit; for a missing path or one that is not a directory.

        Blocking only the first time ``directory`` is seen (its real path and, for ``"auto"``,
        its filesystem type; kept until its watch is dropped): :meth:`asubscribe` does that
        part in a thread.  Otherwise dict look-ups, plus ``inotify_add_watch`` for the
        directory's first subscriber only.
        """
        _check_mode(mode)
        if mode == "poll":
            self._refuse("poll", directory)
            return None
        if not self._cached(directory, mode):  # waitwise itself always calls asubscribe
            resolved = _resolve(directory, self._check_for(mode))  # blocking-ok: see above
            self._remember(directory, *resolved)
        real = self._real[directory]
        if mode == "auto" and not self._local[real]:
            self._refuse("remote", directory)
            return None
        return self._join(directory, real, callback, pattern)

    async def asubscribe(
        self,
        directory: str,
        callback: Callable[[], None],
        mode: Mode = "auto",
        pattern: str | None = None,
    ) -> Subscription | None:
        """Do :meth:`subscribe`, resolving a directory not seen yet in a worker thread."""
        _check_mode(mode)
        if mode != "poll" and not self._cached(directory, mode):
            resolved = await asyncio.to_thread(_resolve, directory, self._check_for(mode))
            self._remember(directory, *resolved)
        return self.subscribe(directory, callback, mode, pattern)

    def unfinished(self, directory: str) -> Unfinished | None:
        """Return what the watch knows of files still being written in ``directory``.

        Live views of the watch's sets: use them on the loop.  ``None`` for a directory not
        watched.  See :class:`~waitwise.triggers.filescan.Unfinished`:
        a file is hidden while inotify saw it written and not closed, and a file modified
        since the watch began is hidden until its close or rename into place was seen.
        """
        real = self._real.get(directory)
        watched = None if real is None else self._dirs.get(real)
        if watched is None:
            return None
        # live views, no copies: read them on the loop, as the watch changes them there
        return Unfinished(watched.writing, watched.completed.keys(), watched.since)

    def writing(self, directory: str) -> frozenset[str]:
        """Return the names in ``directory`` being written, as far as the watch has seen.

        A name enters on ``IN_MODIFY``, or on ``IN_CREATE`` directly followed by its
        ``IN_OPEN`` (inotify cannot tell an open for writing); it leaves on
        ``IN_CLOSE_WRITE``, ``IN_DELETE``, ``IN_MOVED_FROM``, ``IN_MOVED_TO``, and with every
        name on a queue overflow (a lost close would hide its file for good).  A file open
        before the watch began is not known.  Empty for a directory not watched.
        """
        real = self._real.get(directory)
        watched = None if real is None else self._dirs.get(real)
        return frozenset(watched.writing) if watched is not None else frozenset()

    def close(self) -> None:
        """Drop every watch, stop the reader, close the inotify fd; later subscribes: None."""
        self._unusable = "closed"
        self._forget_all()
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._pending.clear()

    def _check_for(self, mode: str) -> Callable[[str], bool] | None:
        return self._notifiable if mode == "auto" else None

    def _cached(self, directory: str, mode: str) -> bool:
        real = self._real.get(directory)
        return real is not None and (mode != "auto" or real in self._local)

    def _remember(self, directory: str, real: str, local: bool | None) -> None:
        if len(self._real) >= _CACHE_CAP or len(self._local) >= _CACHE_CAP:
            # keep what watched directories need: writing() finds them through it
            self._real = {s: r for s, r in self._real.items() if r in self._dirs}
            self._local = {r: ok for r, ok in self._local.items() if r in self._dirs}
        self._real[directory] = real
        if local is not None:
            self._local[real] = local

    def _refuse(self, reason: str, subject: str) -> None:
        level, msg = _REFUSALS[reason]
        _log_once(reason, level, msg, subject)

    def _join(
        self, directory: str, real: str, callback: Callable[[], None], pattern: str | None
    ) -> Subscription | None:
        if self._unusable is not None:
            self._refuse(self._unusable, directory)
            return None
        watched = self._dirs.get(real) or self._watch(real)
        if watched is None:
            return None
        watched.spellings.add(directory)
        subscription = Subscription(self, watched, pattern)
        watched.callbacks[subscription] = callback
        watched.by_pattern.setdefault(pattern, set()).add(subscription)
        if pattern is None or glob.has_magic(pattern):
            watched.globs.add(pattern)
        return subscription

    def _watch(self, real: str) -> _Dir | None:
        inotify = self._inotify or self._open()
        if inotify is None or self._mask is None:
            return None
        try:
            watch = inotify.add_watch(real, self._mask)
        except OSError as exc:
            self._refuse(_ERRNO_REASONS.get(exc.errno or 0, "error"), real)
            if not self._by_wd:
                self._stop()
            return None
        watched = self._by_wd.get(watch.wd)
        if watched is None:
            watched = self._by_wd[watch.wd] = _Dir(watch.wd, watch, {real})
        watched.paths.add(real)
        self._dirs[real] = watched
        if self._task is None:
            self._start(inotify)
        return watched

    def _open(self) -> Inotify | None:
        try:
            from asyncinotify import Inotify, Mask

            inotify = Inotify(cache_size=_READ_EVENTS)
        except OSError as exc:  # EMFILE: fs.inotify.max_user_instances; retried next time
            self._refuse(_ERRNO_REASONS.get(exc.errno or 0, "unavailable"), str(exc))
            return None
        except (ImportError, AttributeError, RuntimeError) as exc:  # not Linux, no inotify
            self._unusable = "unavailable"
            self._refuse("unavailable", repr(exc))
            return None
        self._inotify, self._mask = inotify, Mask(WATCH_MASK | _ONLYDIR)
        return inotify

    def _start(self, inotify: Inotify) -> None:
        task = asyncio.get_running_loop().create_task(self._read(inotify), name="waitwise-inotify")
        # Closed once the task is done, after its remove_reader: never a reused fd number.
        task.add_done_callback(functools.partial(self._reader_done, inotify))
        self._task = task

    def _reader_done(self, inotify: Inotify, task: asyncio.Task[None]) -> None:
        inotify.close()
        if self._task is task:  # not stopped by us (cancelled from outside): start afresh
            self._task = None
            self._forget_all()

    def _stop(self) -> None:
        inotify, task = self._inotify, self._task
        self._inotify, self._task = None, None
        if task is not None:
            with contextlib.suppress(RuntimeError):  # its loop is closed: close below
                task.cancel()
                return
        if inotify is not None:
            inotify.close()

    async def _read(self, inotify: Inotify) -> None:
        try:
            async for event in inotify:
                if self._inotify is not inotify:
                    return
                watch = event.watch
                name = None if event.name is None else str(event.name)
                self._dispatch_safely(-1 if watch is None else watch.wd, int(event.mask), name)
        except Exception as exc:  # the fd itself failed: callers fall back to polling
            log.exception("inotify reader failed; every file wait polls from now on")
            if self._inotify is inotify:
                self._unusable = "failed"
                self._refuse("failed", repr(exc))
                for watched in self._by_wd.values():
                    self._wake(watched, None)
                self._forget_all()

    def _dispatch_safely(self, wd: int, mask: int, name: str | None) -> None:
        try:
            self._dispatch(wd, mask, name)
        except Exception:  # one odd event must not end the reader of every directory
            log.exception("inotify event %#x (watch %d, %r) not handled", mask, wd, name)

    def _dispatch(self, wd: int, mask: int, name: str | None) -> None:
        """Apply one inotify event (the reader's step; tests feed it events hard to cause)."""
        watched = self._by_wd.get(wd)
        if mask & _Q_OVERFLOW:
            _log_once("overflow", logging.WARNING, "inotify queue overflowed: waking every wait")
            for each in self._by_wd.values():
                each.writing.clear()
                self._wake(each, None)
        elif watched is None:
            pass  # a watch already dropped: its last events are moot
        elif mask & _GONE:
            self._drop(watched, remove=bool(mask & _MOVE_SELF))  # moved: the kernel keeps it
            self._wake(watched, None)
        elif name is not None:
            if not mask & _ISDIR and watched.note(mask, name, self._cap):
                msg = "over %d names being written in %s: forgot them (may report early)"
                _log_once("cap", logging.WARNING, msg, self._cap, watched.paths)
            if mask & _COMPLETE:
                self._wake(watched, name)

    def _wake(self, watched: _Dir, name: str | None) -> None:
        """Note that ``name`` completed in ``watched`` (``None``: wake every subscriber)."""
        if name is None:
            watched.woken_all = True
        else:
            watched.woken.add(name)
        if watched.pending:
            return
        watched.pending = True
        self._pending.append(watched)
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        """Call, once each, the subscribers whose pattern matches a name completed meanwhile."""
        self._flush_handle = None
        pending, self._pending = self._pending, []
        for watched in pending:
            names, everyone = watched.woken, watched.woken_all
            watched.pending, watched.woken, watched.woken_all = False, set(), False
            if everyone:
                targets = list(watched.callbacks)
            else:  # exact names by look-up; each glob pattern checked once
                matches = _Matcher(names)
                targets = [sub for name in names for sub in watched.by_pattern.get(name, ())]
                targets += [
                    sub
                    for pattern in watched.globs
                    if matches(pattern)
                    for sub in watched.by_pattern[pattern]
                ]
            for subscription in targets:
                callback = watched.callbacks.get(subscription)
                if callback is None:
                    continue  # closed by an earlier callback of this flush
                try:
                    callback()
                except Exception:  # the subscriber's bug: the others still hear of it
                    log.exception("a callback on %s failed", sorted(watched.paths)[0])

    def _leave(self, subscription: Subscription, watched: _Dir) -> None:
        watched.callbacks.pop(subscription, None)
        same = watched.by_pattern.get(subscription.pattern)
        if same is not None:
            same.discard(subscription)
            if not same:
                del watched.by_pattern[subscription.pattern]
                watched.globs.discard(subscription.pattern)
        if not watched.callbacks and self._by_wd.get(watched.wd) is watched:
            self._drop(watched, remove=True)

    def _drop(self, watched: _Dir, *, remove: bool) -> None:
        """Forget ``watched`` (and its cached real path: a re-pointed symlink is re-read)."""
        del self._by_wd[watched.wd]
        for path in watched.paths:
            self._dirs.pop(path, None)
            self._local.pop(path, None)
        for spelling in watched.spellings:
            self._real.pop(spelling, None)
        if remove and self._inotify is not None:
            with contextlib.suppress(OSError):  # already gone in the kernel
                self._inotify.rm_watch(watched.watch)
        if not self._by_wd:
            self._stop()

    def _forget_all(self) -> None:
        self._by_wd.clear()
        self._dirs.clear()
        self._real.clear()
        self._local.clear()
        self._stop()


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


_PER_LOOP: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, DirectoryEvents]
_PER_LOOP = weakref.WeakKeyDictionary()
_PER_LOOP_LOCK = threading.Lock()


def events_for_loop() -> DirectoryEvents:
    """Return the running loop's :class:`DirectoryEvents`, made on first use or after close.

    Keyed weakly by loop: a new loop never gets a finished loop's instance.
    """
    loop = asyncio.get_running_loop()
    with _PER_LOOP_LOCK:
        found = _PER_LOOP.get(loop)
        if found is None or found.closed:
            found = _PER_LOOP[loop] = DirectoryEvents()
        return found
