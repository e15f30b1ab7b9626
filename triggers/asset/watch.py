"""One watcher's side of the shared stream: match, apply its cursor, fire, record history.

History.  With a ``source``, each firing is a success record in the source's history (feeding
its breaker), and every ``max_probe_errors`` probe errors in a row an error record (a breaker
failure), keyed ``("asset_watcher", <directory>/<pattern>, <record id>, -1, 1)``.  A watch
does not obey the breaker: its scan is what sees the source recover, and firing a file that is
there is never wrong.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Final

from airflow.triggers.base import TriggerEvent

from waitwise.triggers import metrics, runtime
from waitwise.triggers.asset.cursor import CURSOR_SETTLE_S, Cursor, CursorStore
from waitwise.triggers.asset.listing import Entry, Listing, ScanFailed
from waitwise.triggers.asset.spec import WatchSpec
from waitwise.triggers.breaker.ledger import Ledger, TaskKey
from waitwise.triggers.engine.progress import deliver
from waitwise.triggers.store import WaitOutcome

__all__ = ["Watch"]

log = logging.getLogger(__name__)

_RECORD_DAG: Final = "asset_watcher"


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
