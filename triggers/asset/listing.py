"""The shared scan: list the directory, judge which files are complete, back off while idle.

Completeness.  With inotify (``detect="events"``, or ``"auto"`` where the filesystem notifies)
a file is complete unless it is open for writing; by polling it is complete once two scans in a
row saw the same size, mtime and ctime (so a file renamed into place is reported one poll after
it is first seen, and a scan that sees anything change polls again at the start of the
schedule).

Backoff.  The scan backs off with the poll policy while the directory does not change and
starts over after any change; a failed scan (an ``OSError`` from the listing, a probe error)
counts as no change, so watches with different retry strategies still share one scan.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import stat
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from waitwise.triggers import runtime
from waitwise.triggers.asset.spec import WatchSpec
from waitwise.triggers.policy import PollState, interval_at

__all__ = ["Completeness", "Entry", "Listing", "ScanFailed", "scan", "scan_forever"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Entry:
    """A regular file seen by a scan (``ctime_ns``: the cursor's order)."""

    name: str
    size: int
    mtime: float
    mtime_ns: int
    ctime_ns: int

    @property
    def version(self) -> tuple[int, int, int]:
        """Return what changes while a file is written: size, mtime and ctime."""
        return (self.size, self.mtime_ns, self.ctime_ns)


@dataclass(frozen=True, slots=True)
class Listing:
    """One scan of ``directory`` (the shared stream's raw event).

    :param complete: files complete at ``scanned_at``, by ``(ctime_ns, name)``.
    :param pending: files being written (or, polling, changed since the last scan).
    """

    directory: str
    scanned_at: float
    complete: tuple[Entry, ...]
    pending: tuple[Entry, ...]


@dataclass(frozen=True, slots=True)
class ScanFailed:
    """A scan of ``directory`` that raised ``OSError`` (the shared stream's raw event)."""

    directory: str
    scanned_at: float
    kind: str
    message: str


def scan(directory: str) -> list[Entry]:
    """Return the regular files directly in ``directory`` (blocking: run it in a thread).

    Symbolic links and other non-regular entries are left out; a file removed between the
    listing and its ``stat`` is too.

    :raises OSError: the directory cannot be listed.
    """
    found = []
    with os.scandir(directory) as entries:  # blocking-ok: called through asyncio.to_thread
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISREG(st.st_mode):
                found.append(
                    Entry(entry.name, st.st_size, st.st_mtime, st.st_mtime_ns, st.st_ctime_ns)
                )
    return found


class Completeness:
    """Split each scan's files into complete and pending; say whether anything changed.

    Polling, a file is complete once two scans in a row saw the same :attr:`Entry.version`
    (a file first seen is pending).  With events, from the second scan on, a file is complete
    unless ``writing`` names it (inotify saw it written and not yet closed); the first scan
    judges by polling's rule, because inotify does not know files opened before the watch.
    """

    def __init__(self, *, events: bool) -> None:
        self.events = events
        self._previous: dict[str, tuple[int, int, int]] | None = None

    def judge(
        self, entries: Sequence[Entry], writing: frozenset[str]
    ) -> tuple[tuple[Entry, ...], tuple[Entry, ...], bool]:
        """Return ``(complete, pending, changed)``; complete sorted by ``(ctime_ns, name)``."""
        previous, current = self._previous, {e.name: e.version for e in entries}
        self._previous = current
        complete: list[Entry] = []
        pending: list[Entry] = []
        for entry in entries:
            if self.events and previous is not None:
                done = entry.name not in writing
            else:
                done = (previous or {}).get(entry.name) == entry.version
            (complete if done else pending).append(entry)
        complete.sort(key=lambda e: (e.ctime_ns, e.name))
        return tuple(complete), tuple(pending), current != previous


async def _subscribe_events(directory: str, detect: str, wake: Callable[[], None]) -> Any:
    """Return ``(DirectoryEvents, Subscription)`` waking the scan on a change, or ``None``.

    ``None`` (poll only) for ``detect="poll"``, where inotify cannot watch the directory
    (:meth:`waitwise.triggers.notify.DirectoryEvents.asubscribe` says why, once), and while
    :mod:`waitwise.triggers.notify` is not installed.  Imported by name so this module works
    with or without it.
    """
    if detect == "poll":
        return None
    try:
        notify = importlib.import_module("waitwise.triggers.notify")
    except ModuleNotFoundError:
        log.info("waitwise.triggers.notify is not installed: %s is polled", directory)
        return None
    events = notify.events_for_loop()
    subscription = await events.asubscribe(directory, wake, detect)
    if subscription is None:
        return None
    return events, subscription


async def _pause(seconds: float, wake: asyncio.Event | None) -> None:
    """Sleep ``seconds`` on the runtime's clock, or less if ``wake`` is set meanwhile."""
    clock = runtime.current().clock
    if wake is None:
        await clock.sleep(seconds)
        return
    waiter = asyncio.ensure_future(wake.wait())
    sleeper = asyncio.ensure_future(clock.sleep(seconds))
    try:
        await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (waiter, sleeper):
            task.cancel()


async def scan_forever(spec: WatchSpec) -> AsyncGenerator[Listing | ScanFailed, None]:
    """Scan ``spec.directory`` forever; yield one :class:`Listing` or :class:`ScanFailed` a scan.

    Between scans: the poll policy's next interval while nothing changes (a failed scan
    included), its first after a change (restarting the schedule); with events, a change
    wakes the scan early (the interval is then the safety poll).  Scans run in a worker
    thread, never on the loop.  The schedule depends on ``directory``, ``detect`` and
    ``poll`` only: the shared stream key, so every watch of the group scans alike.
    """
    clock = runtime.current().clock
    key = f"{spec.directory}#{spec.detect}"
    wake = asyncio.Event()
    watching = await _subscribe_events(spec.directory, spec.detect, wake.set)
    judge = Completeness(events=watching is not None)
    state = PollState()
    try:
        while True:
            wake.clear()
            at = clock.now()
            try:
                entries = await asyncio.to_thread(scan, spec.directory)
            except OSError as exc:
                yield ScanFailed(spec.directory, at, type(exc).__name__, str(exc))
            else:
                writing = watching[0].writing(spec.directory) if watching else frozenset()
                complete, pending, changed = judge.judge(entries, writing)
                yield Listing(spec.directory, at, complete, pending)
                state = PollState() if changed else state
            delay = interval_at(spec.poll, key, state)
            state = state.advance(delay)
            await _pause(delay, wake if watching else None)
    finally:
        if watching:
            watching[1].close()
