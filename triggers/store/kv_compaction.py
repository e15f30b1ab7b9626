"""Compaction of one source's history in a key-value backend without compare-and-set.

One run: list the source's keys once; read every loose record; for each UTC day that
has loose records (or several part-filled segments), merge them with the day's
part-filled segments into new segments of at most ``segment_records`` (deduplicated
per wait, expired records dropped); wait ``settle_s``; read every new segment back;
only if it decodes to exactly what was written, delete the day's inputs. Then apply
retention to whole segments: days older than ``max_age_s`` (counted back from the
source's newest day, at most now: :func:`~.segments.age_reference`), and the oldest
segments while the others still hold ``max_records``.

Why no record is ever lost, whatever the timing, with any number of concurrent
compactors and appenders: every key is written once under a fresh random name and
never overwritten (see :mod:`.kv_layout`), so a value a compactor read is exactly the
value it later deletes, and it deletes it only after a segment holding that content
has been read back. Rivals that merge the same inputs write their own segments: the
content is then held twice (readers deduplicate) until a later run merges them.
The read-back after ``settle_s`` does not carry this guarantee (no rival ever writes
our keys); it catches a backend that stored less than it was given (a value cut by a
column limit, a masked or undecryptable value) and lets a lagging replica or secrets
cache catch up; a segment that does not read back is deleted again and its inputs
stay for the next run. A crash at any step leaves inputs, outputs or both: never a
loss, at worst duplicates that readers collapse and the next run removes.
Retention counts the segments listed (by the count in their keys), so while a rival's
merge is half done its inputs and its output are both counted, and a run may drop an
oldest segment one step early: retention by count keeps at least ``max_records``
records less any counted twice during a concurrent merge, and at most
``max_records + segment_records`` plus records not yet compacted.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from .base import newest_last
from .kv_layout import Listing, Segment, SourceKeys
from .kv_protocol import KeyValueBackend
from .records import WaitRecord
from .segments import (
    age_reference,
    day_expired,
    day_of,
    decode_record,
    decode_segment,
    encode_segment,
)

logger = logging.getLogger(__name__)
Reader = Callable[[str], Awaitable[str | None]]
Gather = Callable[[Reader, list[str]], Awaitable[list[str | None]]]


@dataclass(frozen=True, slots=True)
class CompactionReport:
    """What one compaction run did, in keys.

    :param merged: loose records and part-filled segments folded into new segments
        (and loose records of expired days, deleted).
    :param written: new segments written and confirmed.
    :param expired: segments deleted by retention (age or count).
    :param unconfirmed: new segments that did not read back, deleted again (their
        inputs stay for the next run).
    :param quarantined: damaged loose records moved to ``corrupt/``.
    """

    merged: int = 0
    written: int = 0
    expired: int = 0
    unconfirmed: int = 0
    quarantined: int = 0


@dataclass(slots=True)
class _Day:
    day: str
    records: list[WaitRecord] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    written: dict[str, list[WaitRecord]] = field(default_factory=dict)


@dataclass(slots=True)
class Compaction:
    """One compaction run of one source (build it, then ``await run()``)."""

    backend: KeyValueBackend
    keys: SourceKeys
    source: str
    segment_records: int
    max_records: int
    max_age_s: float
    now: float  # then the age reference: the source's newest day's end, at most now
    settle_s: float
    sleep: Callable[[float], Awaitable[None]]
    gather: Gather
    report: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    async def run(self) -> CompactionReport:
        """Compact, then apply retention; see the module docstring."""
        listing = self.keys.classify(await self.backend.keys(self.keys.prefix))
        days = await self._plan(listing)
        newest = [*days, *(segment.day for segment in listing.segments)]
        self.now = age_reference(self.now, newest)
        for day in days.values():
            await self._write(day)
        if any(day.written for day in days.values()):
            await self.sleep(self.settle_s)
        merged_away: set[str] = set()
        for day in days.values():
            merged_away.update(await self._confirm(day))
        left = [s for s in listing.segments if s.key not in merged_away]
        new = [
            self._segment(key, day.day, recs)
            for day in days.values()
            for key, recs in day.written.items()
        ]
        await self._retain([*left, *new])
        return CompactionReport(**self.report)

    @staticmethod
    def _segment(key: str, day: str, records: list[WaitRecord]) -> Segment:
        return Segment(key, day, len(records))

    async def _plan(self, listing: Listing) -> dict[str, _Day]:
        days: dict[str, _Day] = {}
        raws = await self.gather(self.backend.get, listing.loose)
        for key, raw in zip(listing.loose, raws, strict=True):
            record = decode_record(self.source, key, raw)
            if record is None:
                await self._quarantine(key, raw)
                continue
            day = days.setdefault(day_of(record.ended_at), _Day(day_of(record.ended_at)))
            day.records.append(record)
            day.inputs.append(key)
        partial = defaultdict(list)
        for segment in listing.segments:
            if segment.count < self.segment_records:
                partial[segment.day].append(segment)
        for name, segments in partial.items():
            if name in days or len(segments) > 1:
                await self._add_segments(days.setdefault(name, _Day(name)), segments)
        return days

    async def _add_segments(self, day: _Day, segments: list[Segment]) -> None:
        raws = await self.gather(self.backend.get, [s.key for s in segments])
        for segment, raw in zip(segments, raws, strict=True):
            records = decode_segment(self.source, segment.key, raw)
            if records is not None and len(records) == segment.count:  # damaged: left alone
                day.records.extend(records)
                day.inputs.append(segment.key)

    async def _quarantine(self, key: str, raw: str | None) -> None:
        if raw is None:  # deleted since the listing (a rival compacted it)
            return
        aside = self.keys.corrupt(raw)
        logger.warning("Moving damaged wait record %s to %s", key, aside)
        await self.backend.set(aside, raw)
        await self.backend.delete(key)
        self.report["quarantined"] += 1

    async def _write(self, day: _Day) -> None:
        if day_expired(day.day, self.now, self.max_age_s):
            return  # its inputs go with the retention below
        kept = newest_last(day.records)
        size = self.segment_records
        for start in range(0, len(kept), size):
            chunk = kept[start : start + size]
            key = self.keys.segment(day.day, len(chunk))
            await self.backend.set(key, encode_segment(chunk))
            day.written[key] = chunk

    async def _confirm(self, day: _Day) -> list[str]:
        keys = list(day.written)
        backs = await self.gather(self.backend.get, keys)
        good = all(
            decode_segment(self.source, key, back) == day.written[key]
            for key, back in zip(keys, backs, strict=True)
        )
        doomed = day.inputs if good else keys
        if not good:
            logger.warning(
                "History segments of %s %s did not read back; kept its inputs", self.source, day.day
            )
            self.report["unconfirmed"] += len(keys)
            day.written.clear()
        else:
            self.report["merged"] += len(day.inputs)
            self.report["written"] += len(keys)
        await self._delete(doomed)
        return day.inputs if good else []

    async def _retain(self, segments: list[Segment]) -> None:
        doomed = [s for s in segments if day_expired(s.day, self.now, self.max_age_s)]
        alive = sorted((s for s in segments if s not in doomed), key=lambda s: (s.day, s.key))
        total = sum(s.count for s in alive)
        for segment in alive:
            if total - segment.count < self.max_records:
                break
            doomed.append(segment)
            total -= segment.count
        self.report["expired"] += len(doomed)
        await self._delete([s.key for s in doomed])

    async def _delete(self, keys: list[str]) -> None:
        await self.gather(self._delete_one, keys)

    async def _delete_one(self, key: str) -> None:
        await self.backend.delete(key)
