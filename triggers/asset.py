"""Schedule DAGs on files landing in a directory: :class:`FileAssetTrigger` for asset watchers.

::

    landing = Asset("partner_drop", watchers=[AssetWatcher(name="partner_files",
        trigger=FileAssetTrigger(directory="/data/in", pattern="partner_*.xml",
                                 source="partner", profile="low"))])

A watch has no task instance and no deadline and never ends: it fires one event per new
complete file whose basename matches ``pattern``.

Sharing.  Watchers of one directory with the same detection mode and poll settings share one
scan per tick (Airflow 3.3's shared streams, one group per triggerer process).  The shared
stream (:meth:`FileAssetTrigger.open_shared_stream`) lists the directory off the event loop and
yields one raw event per scan: a :class:`Listing` of every regular file, split into complete
and pending ones, or a :class:`ScanFailed`.  Each watcher's
:meth:`~FileAssetTrigger.filter_shared_stream` matches its pattern, applies its own cursor and
yields one ``TriggerEvent`` per new complete file.  A whole listing per scan, not one raw event
per file, because a watcher that joins a running group (a restart, a new DAG) must still see
every file its cursor has not passed: each listing is complete, so nothing is missed in between.

Completeness.  With inotify (``detect="events"``, or ``"auto"`` where the filesystem notifies)
a file is complete unless it is open for writing; by polling it is complete once two scans in a
row saw the same size, mtime and ctime (so a file renamed into place is reported one poll after
it is first seen, and a scan that sees anything change polls again at the start of the
schedule).

The cursor (kept per watcher in the asset state store Airflow hands the trigger, key
``waitwise.cursor.<digest of directory and pattern>``): a ctime high-water mark ``H`` (ns) and
the names fired at or above it with their ctime.  A matching complete file is new when its
ctime is at least ``H`` and it was not fired with that ctime.  ``H`` only moves up to the
newest file fired and never past a matching file still being written.  ctime, not mtime: ``mv``
keeps a file's mtime, so a file renamed into place may carry an old one, but a rename sets
its ctime to the time of the rename.  A file replaced under the same name (a new ctime) fires
again.  Contract:

- First start (no cursor stored): files already present are not fired; the first successful
  scan writes the cursor, so files that land after it fire even across a restart.
- Restart: nothing is skipped.  The cursor is written at the first scan at least
  :data:`CURSOR_SETTLE_S` after a firing (by then the triggerer has handed the events over),
  so a triggerer killed in that window fires those files again (at least once, as Airflow
  delivers events).
- Assumes the filesystem's ctime does not go backwards (a wall clock stepped back past the
  newest file fired hides files landing until it catches up) and a rename within the
  directory (Linux: ext4, xfs, tmpfs, ...).
- Outside Airflow (no asset state store) the cursor lives in memory: every run starts fresh.

Backoff and history.  The scan backs off with the poll policy while the directory does not
change and starts over after any change; a failed scan (an ``OSError`` from the listing, a
probe error) counts as no change, so watches with different retry strategies still share one
scan.  With a ``source``, each firing is a success
record in the source's history (feeding its breaker), and every ``max_probe_errors`` probe
errors in a row an error record (a breaker failure), keyed ``("asset_watcher", <directory>/
<pattern>, <record id>, -1, 1)``.  A watch does not obey the breaker: its scan is what sees the
source recover, and firing a file that is there is never wrong.
"""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import importlib
import json
import logging
import os
import stat
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from waitwise.triggers import metrics, runtime
from waitwise.triggers.base import rebuilding
from waitwise.triggers.breaker import BreakerConfig
from waitwise.triggers.breaker.ledger import Ledger, TaskKey
from waitwise.triggers.engine.progress import deliver
from waitwise.triggers.errors import PolicyConfigError
from waitwise.triggers.policy import Exponential, IntervalPolicy, PollState, interval_at
from waitwise.triggers.profiles import ReliabilityProfile, RetryStrategy, get_profile
from waitwise.triggers.spec import DEFAULT_RETRY, check_store, shared_policy, shared_retry
from waitwise.triggers.store import WaitOutcome, validate_source

__all__ = [
    "CURSOR_MAX_NAMES",
    "CURSOR_SETTLE_S",
    "DEFAULT_POLL",
    "DETECT_MODES",
    "UNSET",
    "Completeness",
    "Cursor",
    "CursorStore",
    "Entry",
    "FileAssetTrigger",
    "Listing",
    "ScanFailed",
    "Watch",
    "WatchSpec",
    "build_spec",
    "scan",
    "scan_forever",
]

log = logging.getLogger(__name__)

DETECT_MODES: Final = ("auto", "events", "poll")
DEFAULT_POLL: Final = Exponential(initial=5.0, factor=2.0, cap=60.0)
"""The poll policy of a watch without ``profile`` or ``poll``: 5 s, doubling to 1 min idle."""
CURSOR_SETTLE_S: Final = 2.0
"""Seconds after a firing before the cursor is written (the triggerer syncs events each 1 s)."""
CURSOR_MAX_NAMES: Final = 10_000
"""The most names a cursor keeps above its high-water mark (oldest dropped past it)."""
SPEC_VERSION: Final = 1
_CURSOR_SCHEMA: Final = 1
_RECORD_DAG: Final = "asset_watcher"


class _Unset:
    def __repr__(self) -> str:
        return "<unset>"


UNSET: Final = _Unset()
"""Marks a kwarg not passed: the profile's value (or the default) applies."""

PolicyArg = IntervalPolicy | Mapping[str, Any] | _Unset
RetryArg = RetryStrategy | Mapping[str, Any] | _Unset
BreakerArg = BreakerConfig | Mapping[str, Any] | None | _Unset


def _fail(name: str, value: object, want: str) -> PolicyConfigError:
    return PolicyConfigError(f"{name} must be {want}, got {value!r}")


def _check_directory(directory: object) -> str:
    if not isinstance(directory, str) or not os.path.isabs(directory) or "\0" in directory:
        raise _fail("directory", directory, "an absolute path")
    return os.path.normpath(directory)


def _check_pattern(pattern: object) -> str:
    if not isinstance(pattern, str) or not pattern or "/" in pattern or "\0" in pattern:
        raise _fail("pattern", pattern, "a glob on file names (no '/'), e.g. 'partner_*.xml'")
    return pattern


def _check_detect(detect: object) -> str:
    if detect not in DETECT_MODES:
        raise _fail("detect", detect, f"one of {list(DETECT_MODES)}")
    return str(detect)


def _optional_text(name: str, value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise _fail(name, value, "a string or None")
    return value


def _policy(value: object) -> IntervalPolicy:
    if isinstance(value, Mapping):
        return shared_policy(value)
    if hasattr(value, "next_interval") and hasattr(value, "to_config"):
        return shared_policy(value.to_config())  # validates that it rebuilds
    raise _fail("poll", value, "an interval policy or its config")


def _retry(value: object) -> RetryStrategy:
    if isinstance(value, RetryStrategy):
        return value
    if isinstance(value, Mapping):
        return shared_retry(value)
    raise _fail("retry", value, "a RetryStrategy or its config")


def _breaker(value: object) -> BreakerConfig | None:
    if value is None or isinstance(value, BreakerConfig):
        return value
    if isinstance(value, Mapping):
        return BreakerConfig.from_config(value)
    raise _fail("breaker", value, "a BreakerConfig, its config or None")


@dataclass(frozen=True, slots=True)
class WatchSpec:
    """Everything a file watch knows: what it watches and how (the trigger's kwargs).

    The shapes are :class:`~waitwise.triggers.spec.WaitSpec`'s (``poll``, ``retry``,
    ``breaker`` and ``store`` configs); a watch has no deadline, so no ``timeout``.

    :param directory: the absolute directory listed (not recursive).
    :param pattern: an :func:`fnmatch.fnmatchcase` glob on basenames; hidden files match only
        a pattern that starts with ``.``.
    :param detect: ``"events"`` (inotify; refused where the filesystem cannot notify),
        ``"poll"``, or ``"auto"`` (events where possible, else polling).
    :param poll: scan intervals while nothing changes (restarted after any change).
    :param retry: its ``max_probe_errors`` failed scans in a row count one breaker failure
        (failed scans back off by ``poll``, see :func:`scan_forever`).
    :param source: the data source's name: turns on history records and the breaker.
    :param profile: the profile's name, recorded with the history.
    :param tier: the profile's tier, a metric tag.
    :param breaker: the source's breaker config (``None``: none).
    :param store: where history and breaker state live (see
        :func:`~waitwise.triggers.spec.check_store`).
    """

    directory: str
    pattern: str = "*"
    detect: str = "auto"
    poll: IntervalPolicy = DEFAULT_POLL
    retry: RetryStrategy = DEFAULT_RETRY
    source: str | None = None
    profile: str | None = None
    tier: str | None = None
    breaker: BreakerConfig | None = None
    store: Mapping[str, str] = field(default_factory=lambda: {"kind": "airflow"})

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "directory", _check_directory(self.directory))
        set_(self, "pattern", _check_pattern(self.pattern))
        set_(self, "detect", _check_detect(self.detect))
        set_(self, "poll", _policy(self.poll))
        set_(self, "retry", _retry(self.retry))
        set_(self, "breaker", _breaker(self.breaker))
        for name in ("profile", "tier"):
            _optional_text(name, getattr(self, name))
        if self.source is not None:
            try:
                validate_source(self.source)
            except ValueError as exc:
                raise PolicyConfigError(f"source: {exc}") from exc
        set_(self, "store", check_store(self.store))

    def to_config(self) -> dict[str, Any]:
        """Return the spec as plain JSON, with ``version`` (the trigger's kwargs)."""
        return {
            "version": SPEC_VERSION,
            "directory": self.directory,
            "pattern": self.pattern,
            "detect": self.detect,
            "poll": self.poll.to_config(),
            "retry": self.retry.to_config(),
            "source": self.source,
            "profile": self.profile,
            "tier": self.tier,
            "breaker": self.breaker.to_config() if self.breaker else None,
            "store": dict(self.store),
        }

    @property
    def watch_id(self) -> str:
        """Return what the watch is in records and log lines: ``<directory>/<pattern>``."""
        return os.path.join(self.directory, self.pattern)

    @property
    def cursor_key(self) -> str:
        """Return the asset-state-store key of this watch's cursor (directory and pattern)."""
        blob = f"{self.directory}\0{self.pattern}".encode()
        return "waitwise.cursor." + hashlib.blake2b(blob, digest_size=8).hexdigest()

    def matches(self, name: str) -> bool:
        """Return whether basename ``name`` matches the pattern (hidden files: see above)."""
        if name.startswith(".") and not self.pattern.startswith("."):
            return False
        return fnmatch.fnmatchcase(name, self.pattern)


def build_spec(
    *,
    directory: str,
    pattern: str,
    detect: str,
    source: str | None,
    profile: str | ReliabilityProfile | None,
    poll: PolicyArg,
    retry: RetryArg,
    breaker: BreakerArg,
    tier: str | _Unset | None,
    store: Mapping[str, str] | _Unset,
) -> WatchSpec:
    """Return the spec of the trigger's kwargs; the unset ones come from ``profile``.

    The preset is looked up only when a part is unset, so kwargs written by
    :meth:`WatchSpec.to_config` (every part set) rebuild even for a custom profile's name.

    :raises PolicyConfigError: naming the parameter and value.
    """
    unset = any(isinstance(v, _Unset) for v in (poll, retry, breaker, tier))
    preset = get_profile(profile) if profile is not None and unset else None
    if isinstance(profile, ReliabilityProfile):
        name: str | None = profile.name
    else:
        name = _optional_text("profile", profile)
    return WatchSpec(
        directory=directory,
        pattern=pattern,
        detect=detect,
        poll=_policy(_given(poll, preset.poll if preset else DEFAULT_POLL)),
        retry=_retry(_given(retry, preset.retry if preset else DEFAULT_RETRY)),
        source=source,
        profile=name,
        tier=_optional_text("tier", _given(tier, preset.tier if preset else None)),
        breaker=_breaker(_given(breaker, preset.breaker if preset else None)),
        store=check_store(_given(store, {"kind": "airflow"})),
    )


def _given(value: Any, default: Any) -> Any:
    return default if isinstance(value, _Unset) else value


# --------------------------------------------------------------------------- the scan


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


# --------------------------------------------------------------------------- the cursor


@dataclass(frozen=True, slots=True)
class Cursor:
    """How far a watch has fired (see the module docstring for the contract).

    :param ctime_ns: the high-water mark ``H``: every matching file with an older ctime is done.
    :param above: names fired with a ctime at or above ``H``, and that ctime.
    """

    ctime_ns: int
    above: Mapping[str, int] = field(default_factory=dict)

    def is_new(self, entry: Entry) -> bool:
        """Return whether ``entry`` (a matching complete file) has not been fired yet."""
        return entry.ctime_ns >= self.ctime_ns and self.above.get(entry.name) != entry.ctime_ns

    @classmethod
    def baseline(cls, entries: Sequence[Entry]) -> Cursor:
        """Return the cursor of a first start: every file in ``entries`` counts as done."""
        return cls(0).advance(entries, ())

    def advance(self, fired: Sequence[Entry], pending: Sequence[Entry]) -> Cursor:
        """Return the cursor after ``fired``, never past a file in ``pending``."""
        done = {**self.above, **{e.name: e.ctime_ns for e in fired}}
        high = max((e.ctime_ns for e in fired), default=self.ctime_ns)
        waiting = [e.ctime_ns for e in pending if e.ctime_ns >= self.ctime_ns]
        high = max(self.ctime_ns, min([high, *waiting]))
        above = {name: ctime for name, ctime in done.items() if ctime >= high}
        if len(above) > CURSOR_MAX_NAMES:
            keep = sorted(above.items(), key=lambda item: item[1])[-CURSOR_MAX_NAMES:]
            log.warning("Cursor holds over %d names; dropping the oldest", CURSOR_MAX_NAMES)
            high, above = keep[0][1], dict(keep)
        return Cursor(high, above)

    def to_json(self) -> dict[str, Any]:
        """Return the stored form (ctimes as strings: exact whatever the JSON store does)."""
        above = {name: str(ctime) for name, ctime in sorted(self.above.items())}
        return {"schema": _CURSOR_SCHEMA, "ctime_ns": str(self.ctime_ns), "above": above}

    @classmethod
    def from_json(cls, data: object) -> Cursor:
        """Rebuild a cursor from :meth:`to_json`.

        :raises ValueError: on damaged data.
        """
        if not isinstance(data, Mapping) or data.get("schema") != _CURSOR_SCHEMA:
            raise ValueError(f"not a cursor: {data!r}")
        above = data.get("above")
        if not isinstance(above, Mapping):
            raise ValueError(f"cursor names must be a mapping, got {above!r}")
        return cls(int(data["ctime_ns"]), {str(k): int(v) for k, v in above.items()})


def _accessors(store: Any) -> list[Any]:
    """Return the per-asset accessors of Airflow's ``asset_state_store`` (one per asset).

    One trigger serves every asset whose watcher has the same kwargs; Airflow's accessors
    object then refuses ``aget`` without an asset, so the per-asset ones are taken from it.
    """
    if store is None:
        return []
    many = [*getattr(store, "_by_name", {}).values(), *getattr(store, "_by_uri", {}).values()]
    return many or [store]


class CursorStore:
    """The watch's cursor in the asset state store (each watched asset), else in memory."""

    def __init__(self, store: Any, key: str, spec: WatchSpec) -> None:
        self._accessors, self.key, self.spec = _accessors(store), key, spec

    async def load(self) -> Cursor | None:
        """Return the stored cursor (the least advanced of the assets'), ``None`` if none.

        :raises Exception: whatever the store raises (the caller retries at the next scan).
        """
        found = []
        for accessor in self._accessors:
            stored = await accessor.aget(self.key)
            if stored is None:
                return None  # an asset that never had one: start there as on a first start
            try:
                found.append(Cursor.from_json(stored))
            except (ValueError, KeyError, TypeError):
                log.warning(
                    "Damaged cursor %s of %s; starting afresh", self.key, self.spec.watch_id
                )
                return None
        return min(found, key=lambda c: c.ctime_ns) if found else None

    async def save(self, cursor: Cursor) -> None:
        """Write ``cursor`` to every watched asset."""
        value = {**cursor.to_json(), "directory": self.spec.directory, "pattern": self.spec.pattern}
        for accessor in self._accessors:
            await accessor.aset(self.key, value)


# --------------------------------------------------------------------------- one watch


def _tags(spec: WatchSpec) -> dict[str, str]:
    tags = {"trigger": "FileAssetTrigger"}
    if spec.source:
        tags.update(source=spec.source, profile=spec.profile or "custom")
        if spec.tier:
            tags["tier"] = spec.tier
    return tags


@dataclass(slots=True)
class Watch:
    """One watcher's side of the stream: its pattern, cursor, history and breaker feed."""

    spec: WatchSpec
    cursors: CursorStore
    started_at: float
    cursor: Cursor | None = None
    fired_at: float | None = None  # the cursor is unsaved since this firing
    since: float = 0.0  # the previous firing (or the start): a firing record's started_at
    last_scan_at: float | None = None
    scans: int = 0
    errors: int = 0  # failed scans since the previous firing
    errors_in_row: int = 0
    tags: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.since = self.started_at
        self.tags = _tags(self.spec)

    async def handle(self, raw: object) -> list[TriggerEvent]:
        """Return the events of one raw event of the stream (none for a failed scan)."""
        if isinstance(raw, ScanFailed):
            await self._failed(raw)
            return []
        if not isinstance(raw, Listing):
            raise TypeError(f"unexpected shared stream event {raw!r}")
        self.errors_in_row = 0
        try:
            return await self._listed(raw)
        finally:
            self.last_scan_at = raw.scanned_at

    async def _listed(self, listing: Listing) -> list[TriggerEvent]:
        self.scans += 1
        if self.cursor is None:
            await self._start(listing)
            return []
        if self.fired_at is not None and listing.scanned_at - self.fired_at >= CURSOR_SETTLE_S:
            await self._save(self.cursor)
        new = [e for e in listing.complete if self.spec.matches(e.name) and self.cursor.is_new(e)]
        pending = [e for e in listing.pending if self.spec.matches(e.name)]
        cursor = self.cursor.advance(new, pending)
        if not new:
            return []
        events = [self._event(entry, listing) for entry in new]
        await asyncio.gather(*(self._record_firing(e, listing) for e in new))
        self.cursor, self.fired_at = cursor, listing.scanned_at
        self.since, self.scans, self.errors = listing.scanned_at, 0, 0
        return events

    async def _start(self, listing: Listing) -> None:
        """Load the cursor; with none stored, take the files present as done (first start)."""
        try:
            cursor = await self.cursors.load()
        except Exception:  # the store is unreachable: try again at the next scan, never baseline
            log.exception("Reading the cursor of %s failed; retrying", self.spec.watch_id)
            return
        if cursor is not None:
            self.cursor = cursor
            log.info("Watching %s from its cursor %s", self.spec.watch_id, cursor.ctime_ns)
            return
        present = [e for e in (*listing.complete, *listing.pending) if self.spec.matches(e.name)]
        self.cursor = Cursor.baseline(present)
        log.info("Watching %s; %d file(s) already there", self.spec.watch_id, len(present))
        await self._save(self.cursor)

    async def _save(self, cursor: Cursor) -> None:
        try:
            await self.cursors.save(cursor)
        except Exception:  # kept in memory, written at a later scan
            log.exception("Writing the cursor of %s failed; retrying", self.spec.watch_id)
        else:
            self.fired_at = None

    def _event(self, entry: Entry, listing: Listing) -> TriggerEvent:
        path = os.path.join(listing.directory, entry.name)
        payload = {
            "status": "success",
            "message": f"{path} landed ({entry.size} bytes)",
            "path": path,
            "name": entry.name,
            "size": entry.size,
            "mtime": entry.mtime,
            "ctime_ns": entry.ctime_ns,
            "detected_at": listing.scanned_at,
            "source": self.spec.source,
            "profile": self.spec.profile,
        }
        runtime.current().metrics.incr(metrics.WAITS_SUCCEEDED, self.tags)
        return TriggerEvent(payload)  # type: ignore[no-untyped-call]

    async def _failed(self, failed: ScanFailed) -> None:
        self.errors += 1
        self.errors_in_row += 1
        runtime.current().metrics.incr(metrics.PROBE_ERRORS, self.tags)
        limit = self.spec.retry.max_probe_errors
        log.warning(
            "Listing %s failed (%d in a row, limit %d): %s: %s",
            failed.directory,
            self.errors_in_row,
            limit,
            failed.kind,
            failed.message,
        )
        if self.errors_in_row >= limit:
            self.errors_in_row = 0
            runtime.current().metrics.incr(metrics.WAITS_ERRORED, self.tags)
            await self._record(
                f"errors@{failed.scanned_at:.6f}",
                WaitOutcome.ERROR,
                {"last_error_kind": failed.kind, "detected_at": None, "first_seen_at": None},
            )

    async def _record_firing(self, entry: Entry, listing: Listing) -> None:
        seen = {"first_seen_at": listing.scanned_at, "detected_at": listing.scanned_at}
        await self._record(f"{entry.name}@{entry.ctime_ns}", WaitOutcome.SUCCESS, seen)

    async def _record(self, record_id: str, outcome: WaitOutcome, fields: dict[str, Any]) -> None:
        """Write one history record of the source (never raises; nothing without a source).

        ``started_at``: the previous firing (or the watch's start); ``last_miss_at``: the scan
        before (the file landed after it); ``scheduled_at`` and ``deadline_at``: none.
        """
        spec, rt = self.spec, runtime.current()
        if spec.source is None:
            return
        task = TaskKey(_RECORD_DAG, spec.watch_id, record_id, -1, 1)
        store = rt.store_for(spec.store)
        ledger = Ledger(
            spec.source, spec.profile or "custom", spec.breaker, store, task, rt, self.tags
        )
        values = {
            "started_at": self.since,
            "last_miss_at": self.last_scan_at,
            "pokes": self.scans,
            "error_count": self.errors,
            **fields,
        }
        what = f"Recording {record_id} of {spec.watch_id} in its history"
        if not await deliver(lambda: ledger.write(outcome, values), rt.clock, what):
            rt.metrics.incr(metrics.RECORD_FAILURES, self.tags)


# --------------------------------------------------------------------------- the trigger


class FileAssetTrigger(BaseEventTrigger):
    """Fire once per new complete file in ``directory`` matching ``pattern`` (asset watchers).

    :param directory: the absolute directory watched (files directly in it).
    :param pattern: a glob on basenames (:func:`fnmatch.fnmatchcase`); hidden files match
        only a pattern starting with ``.``.
    :param detect: ``"auto"`` (inotify where the filesystem notifies, else polling),
        ``"events"`` or ``"poll"``.
    :param source: the data source's name: history records and its breaker.
    :param profile: a preset's name (``"high"``, ``"medium"``, ``"low"``) or a
        :class:`~waitwise.triggers.profiles.ReliabilityProfile`: ``poll``, ``retry``,
        ``breaker`` and ``tier`` default to its.
    :param poll: the idle scan policy (a policy or its config); default :data:`DEFAULT_POLL`.
    :param retry: a :class:`~waitwise.triggers.profiles.RetryStrategy` or its config.
    :param breaker: a :class:`~waitwise.triggers.breaker.BreakerConfig`, its config or ``None``.
    :param tier: the tier metric tag.
    :param store: where history and breaker state live.
    :param version: the kwargs' version (written by :meth:`serialize`).

    A bad argument raises :class:`~waitwise.triggers.errors.TriggerArgumentError` (a
    ``ValueError`` naming it for a DAG author, and the ``TypeError`` Airflow's triggerer
    expects from a damaged row).
    """

    def __init__(
        self,
        *,
        directory: str,
        pattern: str = "*",
        detect: str = "auto",
        source: str | None = None,
        profile: str | ReliabilityProfile | None = None,
        poll: PolicyArg = UNSET,
        retry: RetryArg = UNSET,
        breaker: BreakerArg = UNSET,
        tier: str | _Unset | None = UNSET,
        store: Mapping[str, str] | _Unset = UNSET,
        version: int = SPEC_VERSION,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        with rebuilding(type(self)):
            if version != SPEC_VERSION or isinstance(version, bool):
                raise _fail("version", version, str(SPEC_VERSION))
            self.spec = build_spec(
                directory=directory,
                pattern=pattern,
                detect=detect,
                source=source,
                profile=profile,
                poll=poll,
                retry=retry,
                breaker=breaker,
                tier=tier,
                store=store,
            )

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return ``(classpath, kwargs)``: :meth:`WatchSpec.to_config`, plain JSON."""
        cls = type(self)
        return f"{cls.__module__}.{cls.__qualname__}", self.spec.to_config()

    def shared_stream_key(self) -> Hashable:
        """Return what makes two watches' scans the same: directory, detection and poll."""
        spec = self.spec
        poll = json.dumps(spec.poll.to_config(), sort_keys=True)
        return ("waitwise.asset", spec.directory, spec.detect, poll)

    @classmethod
    async def open_shared_stream(cls, kwargs: dict[str, Any]) -> AsyncIterator[Any]:
        """Scan the directory forever for every watch of the group (:func:`scan_forever`)."""
        spec = cls(**kwargs).spec
        log.info("Shared scan of %s started (detect=%s)", spec.directory, spec.detect)
        async for raw in scan_forever(spec):
            yield raw

    async def filter_shared_stream(
        self, shared_stream: AsyncIterator[Any]
    ) -> AsyncIterator[TriggerEvent]:
        """Yield one event per new complete matching file of the shared scans."""
        watch = Watch(
            self.spec,
            CursorStore(self.asset_state_store, self.spec.cursor_key, self.spec),
            runtime.current().clock.now(),
        )
        async for raw in shared_stream:
            for event in await watch.handle(raw):
                yield event

    async def run(self) -> AsyncGenerator[TriggerEvent, None]:
        """Watch alone (no shared stream): the same scan and filter, in this trigger."""
        async for event in self.filter_shared_stream(scan_forever(self.spec)):
            yield event
