"""The one store interface both backends implement, and the helpers they share."""

from __future__ import annotations

import json
import logging
import operator
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final, Protocol, TypeAlias, TypeVar, runtime_checkable

from waitwise.triggers.breaker import BreakerSnapshot
from waitwise.triggers.errors import StoreError

from .records import WaitKey, WaitOutcome, WaitRecord, validate_source

DEFAULT_RETENTION: Final = 20_000
"""Records kept per source unless a store is configured otherwise (learning needs 10,000)."""
DEFAULT_MAX_AGE_S: Final = 400 * 86_400.0
"""Age past which records go (by ``ended_at``): a year of daily waits plus a month."""

logger = logging.getLogger(__name__)
BreakerUpdate: TypeAlias = Callable[[BreakerSnapshot | None], BreakerSnapshot]
_T = TypeVar("_T")


@runtime_checkable
class WaitStore(Protocol):
    """Durable per-source wait history and breaker state.

    Contracts every backend keeps (the shared contract tests check them):

    - ``append`` costs the same whatever the history holds (it never lists or reads
      the source's history) and upserts by :attr:`WaitRecord.key` at read time: a
      wait recorded twice (a trigger that ran twice) appears once, the record with
      the newest ``ended_at`` winning (ties: the greater canonical JSON).
    - ``history`` returns records oldest first / newest last by
      :attr:`WaitRecord.order`, at most ``retention`` per source; damaged entries
      are skipped with a warning, never raised. Retention by count and by age is
      applied to storage by compaction (amortised, never per append).
    - ``update_breaker`` is a read-modify-write that sets ``version`` to the stored
      version + 1. ``fn`` must be pure: it may run more than once (retries) and in
      a worker thread; the caller uses the snapshot returned, not its own.
    """

    async def append(self, record: WaitRecord) -> None:
        """Record a wait, replacing any record with the same key."""
        ...

    async def append_many(self, records: list[WaitRecord]) -> None:
        """Record several waits of one source at once, as :meth:`append` would each.

        For the waits of a source that end together: fewer writes than one per record.
        """
        ...

    async def history(self, source: str, limit: int | None = None) -> list[WaitRecord]:
        """Return the newest ``limit`` records of ``source`` (all if ``None``)."""
        ...

    async def scan(self, source: str, fold: Callable[[Iterator[WaitRecord]], _T]) -> _T:
        """Return ``fold`` of ``source``'s stored records, folded in a worker thread.

        The bulk read for learning: the records come one at a time, in storage order, as
        stored (a wait recorded twice comes twice; damaged entries are skipped with a
        warning), and none is kept by the store, so a fold that reduces each record to a
        few numbers never holds thousands of objects (which the garbage collector would
        promote and later walk with the event loop stopped). The I/O is the same as
        :meth:`history`'s; nothing of it runs on the event loop but awaiting.
        """
        ...

    async def find(self, source: str, key: WaitKey) -> WaitRecord | None:
        """Return the record of one wait (task instance try) written lately, or ``None``."""
        ...

    async def append_change(self, source: str, change: Mapping[str, Any]) -> None:
        """Add ``change`` (plain JSON, with a numeric ``at``) to ``source``'s change log.

        The log records every change made to a source's settings (auto-tuning, its reverts),
        one write per change, never rewritten.
        """
        ...

    async def changes(self, source: str) -> list[dict[str, Any]]:
        """Return ``source``'s change log, oldest ``at`` first; damaged entries are skipped."""
        ...

    async def sources(self) -> list[str]:
        """Return the sources that have history or a breaker, sorted."""
        ...

    async def get_breaker(self, source: str) -> BreakerSnapshot | None:
        """Return the stored breaker snapshot, or ``None`` if absent or damaged."""
        ...

    async def update_breaker(self, source: str, fn: BreakerUpdate) -> BreakerSnapshot:
        """Store ``fn(stored snapshot or None)`` and return what was stored."""
        ...


def source_of(records: list[WaitRecord]) -> str:
    """Return the one source of a batch of records to append together, else raise.

    :raises TypeError: when ``records`` are not all :class:`WaitRecord` of one source.
    """
    source = records[0].source if records and isinstance(records[0], WaitRecord) else None
    if source is None or any(not isinstance(r, WaitRecord) or r.source != source for r in records):
        raise TypeError(f"records must be WaitRecords of one source, got {records!r}")
    return source


def check_retention(retention: object) -> int:
    """Return ``retention`` if it is an int >= 1, else raise ``ValueError``."""
    if type(retention) is not int or retention < 1:
        raise ValueError(f"retention must be an int >= 1, got {retention!r}")
    return retention


def check_limit(limit: object) -> int | None:
    """Return ``limit`` if it is ``None`` or an int >= 0, else raise ``ValueError``."""
    if limit is not None and (type(limit) is not int or limit < 0):
        raise ValueError(f"limit must be None or an int >= 0, got {limit!r}")
    return limit


_KEY_FIELDS: Final = ("dag_id", "task_id", "run_id", "map_index", "try_number")
_KEY: Final = operator.attrgetter(*_KEY_FIELDS)
"""WaitRecord.key, flattened and in C (history reads sort 100,000 records)."""
_ORDER: Final = operator.attrgetter("ended_at", "started_at", *_KEY_FIELDS)


def canonical(record: WaitRecord) -> str:
    """Return the record's canonical JSON (sorted keys, no spaces): its stored form."""
    return json.dumps(record.to_json_dict(), sort_keys=True, separators=(",", ":"))


def newest_last(records: Iterable[WaitRecord], limit: int | None = None) -> list[WaitRecord]:
    """Keep one record per key, sort by order, keep the newest ``limit``.

    Of several records of one wait, one that says how the wait ended (success, timeout,
    skipped, error, rejected) beats one that does not (re-opened, cancelled), whatever their
    times: a trigger that moved to another triggerer is cancelled in the first one (Airflow
    3.3 sends that cancellation as a user action) while the second one finishes the wait.
    Then the newest ``ended_at`` wins, ties by the greater canonical JSON, so every reader
    picks the same one whatever order it read them in.
    """
    unique: dict[object, WaitRecord] = {}
    for record in records:
        key = _KEY(record)
        kept = unique.setdefault(key, record)
        if kept is not record and _newer(record, kept):
            unique[key] = record
    ordered = sorted(unique.values(), key=_ORDER)
    return ordered if limit is None else ordered[max(len(ordered) - limit, 0) :]


_PROVISIONAL: Final = frozenset({WaitOutcome.REOPENED, WaitOutcome.CANCELLED})


def _newer(record: WaitRecord, than: WaitRecord) -> bool:
    final, than_final = record.outcome not in _PROVISIONAL, than.outcome not in _PROVISIONAL
    if final != than_final:
        return final
    if record.ended_at != than.ended_at:
        return record.ended_at > than.ended_at
    return record != than and canonical(record) > canonical(than)


def check_max_age(max_age_s: object) -> float:
    """Return ``max_age_s`` as float if it is a number of seconds > 0, else raise."""
    if isinstance(max_age_s, bool) or not isinstance(max_age_s, int | float) or max_age_s <= 0:
        raise ValueError(f"max_age_s must be seconds > 0, got {max_age_s!r}")
    return float(max_age_s)


@dataclass(frozen=True, slots=True)
class CompactionPolicy:
    """When a store compacts a source's history, and how big its segments grow.

    A store compacts a source on the first append to it in this process, then after
    every ``every`` appends or ``interval_s`` seconds, whichever comes first; the
    decision counts appends in memory and never reads the store.

    :param every: appends to one source between compactions; ``None`` never compacts
        on its own (call ``compact`` yourself).
    :param interval_s: the longest time between compactions of an appended source.
    :param segment_records: the most records one segment holds.
    """

    every: int | None = 500
    interval_s: float = 6 * 3600.0
    segment_records: int = 1000

    def __post_init__(self) -> None:
        if self.every is not None and (type(self.every) is not int or self.every < 1):
            raise ValueError(f"every must be None or an int >= 1, got {self.every!r}")
        if isinstance(self.interval_s, bool) or not isinstance(self.interval_s, int | float):
            raise ValueError(f"interval_s must be seconds, got {self.interval_s!r}")
        if type(self.segment_records) is not int or self.segment_records < 1:
            raise ValueError(f"segment_records must be an int >= 1, got {self.segment_records!r}")


class CompactionSchedule:
    """Decide, per source and in memory only, whether an append should compact.

    :param policy: the thresholds.
    :param now: wall-clock seconds (injected by tests).
    """

    def __init__(self, policy: CompactionPolicy, now: Callable[[], float]) -> None:
        self.policy = policy
        self._now = now
        self._appends: Counter[str] = Counter()
        self._last: dict[str, float] = {}

    def due(self, source: str) -> bool:
        """Count one append to ``source``; return whether it is time to compact it."""
        if self.policy.every is None:
            return False
        self._appends[source] += 1
        now, last = self._now(), self._last.get(source)
        stale = last is None or now - last >= self.policy.interval_s
        if not stale and self._appends[source] < self.policy.every:
            return False
        self._appends[source], self._last[source] = 0, now
        return True


def next_snapshot(
    source: str, current: BreakerSnapshot | None, fn: BreakerUpdate
) -> BreakerSnapshot:
    """Apply ``fn`` and set the version to the stored one + 1.

    :raise StoreError: if ``fn`` returns anything but a snapshot of ``source``.
    """
    new = fn(current)
    if not isinstance(new, BreakerSnapshot) or new.source != validate_source(source):
        raise StoreError(f"breaker update for {source!r} must return its snapshot, got {new!r}")
    return replace(new, version=(current.version if current else 0) + 1)


def check_change(source: str, change: object) -> str:
    """Return ``change`` as canonical JSON text, after checking its shape.

    :raises TypeError: when it is not a JSON object with a finite, non-negative ``at``.
    """
    validate_source(source)
    _check_at(change)
    return json.dumps(change, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _check_at(change: object) -> None:
    at = change.get("at") if isinstance(change, Mapping) else None
    if isinstance(at, bool) or not isinstance(at, int | float) or not 0 <= at < float("inf"):
        raise TypeError(f"a change must be a JSON object with epoch seconds 'at', got {change!r}")


def decode_changes(where: str, raws: Iterable[str | bytes | None]) -> list[dict[str, Any]]:
    """Return the change-log entries of ``raws``, oldest ``at`` first (damaged ones warned)."""
    found: list[dict[str, Any]] = []
    for raw in raws:
        if raw is None:
            continue
        try:
            item = json.loads(raw)
            _check_at(item)
        except (ValueError, TypeError) as exc:
            logger.warning("Skipping damaged change in %s: %s", where, exc)
            continue
        found.append(item)
    return sorted(found, key=lambda c: (c["at"], json.dumps(c, sort_keys=True)))
