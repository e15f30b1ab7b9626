"""AirflowStore: the wait store kept in Airflow, over a four-method key-value seam.

The seam (:class:`~.kv_protocol.KeyValueBackend`) is last-writer-wins per key with prefix
listing and *no* compare-and-set. Its read paths: :class:`~.variables.VariableBackend`
from a trigger or a worker (the Task SDK), :class:`~.sql.MetadataBackend` inside the
api-server (Airflow's ORM), :class:`~.rest.RestBackend` from a console (the REST API).
Key layout: :mod:`.kv_layout` (``ns`` defaults to ``waitwise``).

What it guarantees:

- **Appends cost one write**, whatever the history holds: every write of a record gets
  its own fresh key (``wait/<digest>.<token>``); nothing is listed or read. Any number
  of triggerers and workers lose nothing. A wait written twice (a trigger that ran
  twice, a re-opened wait ending) is read once: the newest ``ended_at`` wins.
- **Compaction** folds loose records into per-day segments (one read for up to
  ``segment_records`` records) and applies retention by count and age; it never loses
  a record whatever the timing (:mod:`.kv_compaction` says why). A store compacts a
  source in the background on its first append in this process, then every
  ``compaction.every`` appends or ``compaction.interval_s`` (:class:`CompactionPolicy`),
  at most one run per source at a time in a process; :meth:`AirflowStore.compact` runs
  one now. Records written by 0.1.0 (``wait/<ended_ms>-<digest>``, schema 1) are read as
  they are and compacted like the others. While a 0.1.0 writer still runs, compaction
  can race its in-place rewrite of one record (one round trip wide): upgrade every
  triggerer and worker together.
- **Bulk reads**: :meth:`AirflowStore.history` lists the source once and reads every
  segment and loose record; a :class:`~.kv_protocol.BulkReader` backend returns keys and
  values in one listing. A read that races a compaction (a listed key deleted before it
  was read) lists again, up to three times.
- **Breaker updates** are exact within a process: every store in the process shares
  one lock per source, so all triggers of a triggerer serialise. Across processes
  they are optimistic with a timing assumption (Fischer-style): read, apply ``fn``,
  re-read (retry if it changed), write with a fresh token appended to the value's
  lineage, wait ``settle_s``, read back, and retry unless the token survived. A rival
  that passed its re-read before our write lands its own write within one round trip,
  so after ``settle_s`` we see it and retry. Updates are exact while every rival's
  re-read-to-write gap stays below ``settle_s`` (default 0.25 s; a few ms normally);
  a longer stall (an overloaded triggerer) can lose one update, which costs one missed
  outcome or one extra probe; history is never affected. Without the settle wait,
  4 processes x 50 updates on the tests' file-backed fake lost ~25% of updates; with
  50 ms, none in repeated runs under load.
- Damaged values are skipped with a warning. A damaged breaker value is copied to
  ``corrupt/`` before it is replaced; a damaged loose record is moved there by the next
  compaction; a damaged segment is left alone (read around) until retention drops it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any, Final, TypeVar

from waitwise.triggers.breaker import BreakerSnapshot
from waitwise.triggers.errors import StoreConflictError

from ._locks import process_lock
from .base import (
    DEFAULT_MAX_AGE_S,
    DEFAULT_RETENTION,
    BreakerUpdate,
    CompactionPolicy,
    CompactionSchedule,
    canonical,
    check_change,
    check_limit,
    check_max_age,
    check_retention,
    decode_changes,
    newest_last,
    next_snapshot,
    source_of,
)
from .kv_compaction import Compaction, CompactionReport
from .kv_layout import Listing, SourceKeys, digest
from .kv_protocol import BulkReader, KeyValueBackend
from .records import SOURCE_PATTERN, WaitKey, WaitRecord, validate_source
from .segments import day_of, decode_record, decode_segment, encode_segment, iter_segment

LINEAGE: Final = 16
NAMESPACE_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
READ_ATTEMPTS: Final = 3
DEFAULT_COMPACTION: Final = CompactionPolicy()
logger = logging.getLogger(__name__)
_T = TypeVar("_T")

__all__ = ["AirflowStore", "BulkReader", "CompactionReport", "KeyValueBackend"]


def _dumps(data: object) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)


class AirflowStore:
    """A :class:`~waitwise.triggers.store.base.WaitStore` kept in Airflow.

    :param backend: the key-value seam; ``None`` means Airflow Variables through the
        Task SDK (:class:`~waitwise.triggers.store.variables.VariableBackend`).
    :param retention: the most waits kept per source; the oldest go first.
    :param max_age_s: waits that ended longer ago go (whole UTC days, by compaction).
    :param compaction: when to compact and how big segments grow.
    :param namespace: the key prefix, matching :data:`NAMESPACE_PATTERN`.
    :param max_attempts: optimistic breaker-update attempts before
        :class:`~waitwise.triggers.store.base.StoreConflictError`.
    :param read_concurrency: most backend calls in flight for one read or compaction.
    :param settle_s: how long a breaker write waits before it reads itself back (it
        must exceed the longest gap between a rival's last read and its write); a
        compaction waits as long before it reads its segments back.
    :param sleep: the awaitable sleep used for ``settle_s`` (tests inject one).
    :param now: wall-clock epoch seconds, for age retention and the compaction timer.
    """

    def __init__(
        self,
        backend: KeyValueBackend | None = None,
        *,
        retention: int = DEFAULT_RETENTION,
        max_age_s: float = DEFAULT_MAX_AGE_S,
        compaction: CompactionPolicy = DEFAULT_COMPACTION,
        namespace: str = "waitwise",
        max_attempts: int = 10,
        read_concurrency: int = 16,
        settle_s: float = 0.25,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        now: Callable[[], float] = time.time,
    ) -> None:
        if backend is None:
            from .variables import VariableBackend

            backend = VariableBackend()
        if not isinstance(namespace, str) or not NAMESPACE_PATTERN.fullmatch(namespace):
            raise ValueError(f"namespace must match {NAMESPACE_PATTERN.pattern}: {namespace!r}")
        for name, value in (("max_attempts", max_attempts), ("read_concurrency", read_concurrency)):
            if type(value) is not int or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if not isinstance(settle_s, int | float) or not 0 <= settle_s < 60:
            raise ValueError(f"settle_s must be seconds in [0, 60), got {settle_s!r}")
        self.backend = backend
        self.retention = check_retention(retention)
        self.max_age_s = check_max_age(max_age_s)
        self.compaction = compaction
        self.namespace = namespace
        self.max_attempts = max_attempts
        self.read_concurrency = read_concurrency
        self.settle_s = float(settle_s)
        self._sleep = sleep
        self._now = now
        self._schedule = CompactionSchedule(compaction, now)
        self._compactions: set[asyncio.Task[CompactionReport | None]] = set()

    def _keys(self, source: str) -> SourceKeys:
        return SourceKeys(f"{self.namespace}/{validate_source(source)}/")

    def _key(self, source: str, suffix: str) -> str:
        return f"{self._keys(source).prefix}{suffix}"

    async def append(self, record: WaitRecord) -> None:
        """Write ``record`` under a fresh key (one write, no read); compact when due."""
        if not isinstance(record, WaitRecord):
            raise TypeError(f"record must be a WaitRecord, got {record!r}")
        await self.backend.set(self._keys(record.source).loose(record), canonical(record))
        self._compact_if_due(record.source)

    def _compact_if_due(self, source: str) -> None:
        if self._schedule.due(source):
            task = asyncio.get_running_loop().create_task(self._compact_quietly(source))
            self._compactions.add(task)
            task.add_done_callback(self._compactions.discard)

    async def append_many(self, records: list[WaitRecord]) -> None:
        """Write ``records`` (one source) as one segment per day: one write, not one each.

        A single record goes under its own loose key, as :meth:`append`.  A batch becomes a
        part-filled segment, which readers read as any segment and compaction merges.
        """
        if len(records) <= 1:
            for record in records:
                await self.append(record)
            return
        source = source_of(records)
        keys, days = self._keys(source), defaultdict(list)
        for record in records:
            days[day_of(record.ended_at)].append(record)
        for day, group in sorted(days.items()):
            await self.backend.set(keys.segment(day, len(group)), encode_segment(group))
        self._compact_if_due(source)

    async def find(self, source: str, key: WaitKey) -> WaitRecord | None:
        """Return the record of wait ``key`` (one task instance try) written lately, or ``None``.

        Looks at its own loose keys (one listing by the key's digest) and at the segments of
        today and yesterday (UTC), where a batch of endings lands; an older, compacted
        record is not looked for.
        """
        keys, today = self._keys(source), self._now()
        prefixes = [f"{keys.prefix}wait/{digest(key)[:24]}."]
        prefixes += [f"{keys.prefix}seg/{day_of(today - d * 86_400)}." for d in (0, 1)]
        listed = [k for prefix in prefixes for k in await self.backend.keys(prefix)]
        found: list[WaitRecord] = []
        for name, raw in zip(listed, await self._gather(self.backend.get, listed), strict=True):
            if "/seg/" in name:
                found.extend(decode_segment(source, name, raw) or ())
            else:
                found.extend(r for r in [decode_record(source, name, raw)] if r is not None)
        mine = newest_last(r for r in found if r.key == key)
        return mine[-1] if mine else None

    async def history(self, source: str, limit: int | None = None) -> list[WaitRecord]:
        """Return the newest ``limit`` records of ``source`` (all if ``None``).

        At most ``retention`` records, each wait once; one listing, then every segment
        and loose record is read (or one bulk listing with values).
        """
        limit = check_limit(limit)
        keep = self.retention if limit is None else min(limit, self.retention)
        keys = self._keys(source)
        values = await self._read_history(keys)
        return await asyncio.to_thread(_decode_history, source, keys, values, keep)

    async def scan(self, source: str, fold: Callable[[Iterator[WaitRecord]], _T]) -> _T:
        """Return ``fold`` of the source's records (see :meth:`WaitStore.scan`).

        The same reads as :meth:`history`; the decoding runs line by line inside ``fold``'s
        worker thread.
        """
        keys = self._keys(source)
        values = await self._read_history(keys)
        return await asyncio.to_thread(fold, _iter_history(source, keys, values))

    async def append_change(self, source: str, change: Mapping[str, Any]) -> None:
        """Write one change-log entry under a fresh key (one write, no read)."""
        text = check_change(source, change)
        await self.backend.set(self._keys(source).change(float(change["at"])), text)

    async def changes(self, source: str) -> list[dict[str, Any]]:
        """Return the source's change log (one listing, then one read per entry)."""
        prefix = f"{self._keys(source).prefix}tune/"
        listed = await self.backend.keys(prefix)
        return decode_changes(prefix, await self._gather(self.backend.get, listed))

    async def compact(self, source: str) -> CompactionReport:
        """Compact ``source``'s history now and apply retention (:mod:`.kv_compaction`)."""
        keys = self._keys(source)
        async with process_lock(f"kv-compact:{keys.prefix}"):
            run = Compaction(
                self.backend,
                keys,
                source,
                self.compaction.segment_records,
                self.retention,
                self.max_age_s,
                self._now(),
                self.settle_s,
                self._sleep,
                self._gather,
            )
            return await run.run()

    async def wait_compactions(self) -> None:
        """Wait until the compactions appends started in the background are done."""
        while self._compactions:
            await asyncio.gather(*self._compactions)

    async def sources(self) -> list[str]:
        """Return the sources that have any key under the namespace, sorted."""
        root = f"{self.namespace}/"
        names = {key[len(root) :].split("/", 1)[0] for key in await self.backend.keys(root)}
        return sorted(name for name in names if SOURCE_PATTERN.fullmatch(name))

    async def _compact_quietly(self, source: str) -> CompactionReport | None:
        try:
            return await self.compact(source)
        except Exception:  # a background run must not crash the loop; the next one retries
            logger.warning("Compacting the history of %s failed", source, exc_info=True)
            return None

    async def _read_history(self, keys: SourceKeys) -> dict[str, str | None]:
        if isinstance(self.backend, BulkReader):
            items = await self.backend.items(keys.prefix)
            listing = keys.classify(list(items))
            return {key: items[key] for key in _history_keys(listing)}
        for attempt in range(READ_ATTEMPTS):
            wanted = _history_keys(keys.classify(await self.backend.keys(keys.prefix)))
            values = await self._gather(self.backend.get, wanted)
            if None not in values or attempt == READ_ATTEMPTS - 1:
                return dict(zip(wanted, values, strict=True))
        raise AssertionError("unreachable")

    async def get_breaker(self, source: str) -> BreakerSnapshot | None:
        """Return the stored snapshot, or ``None`` if absent or damaged (warned)."""
        key = self._key(source, "breaker")
        return self._decode_breaker(source, key, await self.backend.get(key))[0]

    async def update_breaker(self, source: str, fn: BreakerUpdate) -> BreakerSnapshot:
        """Store ``fn(stored snapshot or None)``, version bumped; see the module doc.

        :raise StoreConflictError: after ``max_attempts`` lost races in a row.
        """
        key = self._key(source, "breaker")
        async with process_lock(f"kv:{key}"):
            for _ in range(self.max_attempts):
                stored = await self._try_update(source, key, fn)
                if stored is not None:
                    return stored
        raise StoreConflictError(
            f"breaker of {source!r} changed under all {self.max_attempts} attempts"
        )

    async def _try_update(self, source: str, key: str, fn: BreakerUpdate) -> BreakerSnapshot | None:
        raw = await self.backend.get(key)
        current, lineage = self._decode_breaker(source, key, raw)
        new = next_snapshot(source, current, fn)
        if await self.backend.get(key) != raw:
            return None
        if raw is not None and current is None:
            aside = self._keys(source).corrupt(raw)
            logger.warning("Moving damaged breaker state %s to %s", key, aside)
            await self.backend.set(aside, raw)
        token = uuid.uuid4().hex
        value = {"snapshot": new.to_json_dict(), "lineage": [*lineage, token][-LINEAGE:]}
        await self.backend.set(key, _dumps(value))
        await self._sleep(self.settle_s)  # let rivals that read before us land first
        back = await self.backend.get(key)
        return new if token in _lineage(back) else None

    async def _gather(self, fn: Callable[[str], Awaitable[_T]], keys: list[str]) -> list[_T]:
        gate = asyncio.Semaphore(self.read_concurrency)

        async def one(key: str) -> _T:
            async with gate:
                return await fn(key)

        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(key)) for key in keys]
        return [task.result() for task in tasks]

    @staticmethod
    def _decode_breaker(
        source: str, key: str, raw: str | None
    ) -> tuple[BreakerSnapshot | None, list[str]]:
        if raw is None:
            return None, []
        try:
            data = json.loads(raw)
            snapshot = BreakerSnapshot.from_json_dict(data["snapshot"])
            if snapshot.source != source:
                raise ValueError(f"snapshot of source {snapshot.source!r}")
        except (ValueError, RecursionError, TypeError, KeyError) as exc:
            logger.warning("Ignoring damaged breaker state %s: %s", key, exc)
            return None, []
        return snapshot, _lineage(raw)


def _decode_history(
    source: str, keys: SourceKeys, values: dict[str, str | None], keep: int
) -> list[WaitRecord]:
    """Decode the values :meth:`AirflowStore._read_history` read (a worker thread's work).

    Segments are parsed whole (:func:`decode_segment`, faster than line by line).
    """
    whole = _iter_history(source, keys, values, lambda k, raw: decode_segment(source, k, raw))
    return newest_last(whole, keep)


def _iter_history(
    source: str,
    keys: SourceKeys,
    values: dict[str, str | None],
    segment: Callable[[str, str | None], Iterable[WaitRecord] | None] | None = None,
) -> Iterator[WaitRecord]:
    """Yield the records of the values read.

    Segments go through ``segment``; by default one record at a time (:func:`iter_segment`),
    as :meth:`AirflowStore.scan` needs.
    """
    for key, raw in values.items():
        if key.startswith(f"{keys.prefix}seg/"):
            found = iter_segment(source, key, raw) if segment is None else segment(key, raw)
            yield from found or ()
        else:
            record = decode_record(source, key, raw)
            if record is not None:
                yield record


def _lineage(raw: str | None) -> list[str]:
    try:
        tokens = json.loads(raw or "{}")["lineage"]
    except (ValueError, RecursionError, TypeError, KeyError):
        return []
    if not isinstance(tokens, list):
        return []
    return [token for token in tokens if isinstance(token, str)]


def _history_keys(listing: Listing) -> list[str]:
    return [*listing.loose, *(segment.key for segment in listing.segments)]
