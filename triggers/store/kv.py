"""AirflowStore: the wait store kept in Airflow, over a four-method key-value seam.

The seam (:class:`KeyValueBackend`) is last-writer-wins per key with prefix listing
and *no* compare-and-set; Airflow Variables (:mod:`.variables`) are the production
backend. Key layout (``ns`` defaults to ``waitwise``)::

    ns/<source>/breaker                          {"snapshot": {...}, "lineage": [...]}
    ns/<source>/wait/<ended_ms:013d>-<digest>    one WaitRecord, JSON
    ns/<source>/corrupt/<sha256>                 a damaged breaker value, kept aside

What it guarantees:

- **Appends never conflict**: one key per record, so any number of triggerers and
  workers lose nothing. ``digest`` hashes the record key; a later write of the same
  wait finds its key by digest and overwrites it (upsert). Two *simultaneous* first
  writes of one wait may create two keys: readers keep the newest per digest and the
  next append to the source deletes the others.
- **Retention**: each append deletes the oldest waits beyond ``retention`` (ordered by
  the first writer's ``ended_at`` in the key).
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
- Damaged values are skipped with a warning; a damaged breaker value is copied to
  ``corrupt/`` before it is replaced, never silently overwritten.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Final, Protocol, runtime_checkable

from waitwise.triggers.breaker import BreakerSnapshot
from waitwise.triggers.errors import StoreConflictError

from ._locks import process_lock
from .base import (
    DEFAULT_RETENTION,
    BreakerUpdate,
    check_limit,
    check_retention,
    newest_last,
    next_snapshot,
)
from .records import SOURCE_PATTERN, WaitKey, WaitRecord, validate_source

LINEAGE: Final = 16
NAMESPACE_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
_WAIT_SUFFIX: Final = re.compile(r"(\d{13,})-([0-9a-f]{24})")
logger = logging.getLogger(__name__)


@runtime_checkable
class KeyValueBackend(Protocol):
    """String key-value storage with prefix listing; last writer wins, no CAS."""

    async def get(self, key: str) -> str | None:
        """Return the value, or ``None`` if the key does not exist."""
        ...

    async def set(self, key: str, value: str) -> None:
        """Create or overwrite ``key``."""
        ...

    async def delete(self, key: str) -> None:
        """Delete ``key``; a missing key is not an error."""
        ...

    async def keys(self, prefix: str) -> list[str]:
        """Return every key starting with ``prefix``, in any order."""
        ...


def _dumps(data: object) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _digest(key: WaitKey | str) -> str:
    return hashlib.sha256(_dumps(key).encode()).hexdigest()


class AirflowStore:
    """A :class:`~waitwise.triggers.store.base.WaitStore` kept in Airflow.

    :param backend: the key-value seam; ``None`` means Airflow Variables through the
        Task SDK (:class:`~waitwise.triggers.store.variables.VariableBackend`).
    :param retention: the most waits kept per source; the oldest go first.
    :param namespace: the key prefix, matching :data:`NAMESPACE_PATTERN`.
    :param max_attempts: optimistic breaker-update attempts before
        :class:`~waitwise.triggers.store.base.StoreConflictError`.
    :param read_concurrency: most backend reads in flight for one ``history``.
    :param settle_s: how long a breaker write waits before it reads itself back; it
        must exceed the longest gap between a rival's last read and its write.
    :param sleep: the awaitable sleep used for ``settle_s`` (tests inject one).
    """

    def __init__(
        self,
        backend: KeyValueBackend | None = None,
        *,
        retention: int = DEFAULT_RETENTION,
        namespace: str = "waitwise",
        max_attempts: int = 10,
        read_concurrency: int = 16,
        settle_s: float = 0.25,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if backend is None:
            from .variables import VariableBackend

            backend = VariableBackend()
        if not isinstance(namespace, str) or not NAMESPACE_PATTERN.fullmatch(namespace):
            raise ValueError(f"namespace must match {NAMESPACE_PATTERN.pattern}: {namespace!r}")
        for name, value in (("max_attempts", max_attempts), ("read_concurrency", read_concurrency)):
            if type(value) is not int or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        self.backend = backend
        self.retention = check_retention(retention)
        self.namespace = namespace
        self.max_attempts = max_attempts
        self.read_concurrency = read_concurrency
        if not isinstance(settle_s, int | float) or not 0 <= settle_s < 60:
            raise ValueError(f"settle_s must be seconds in [0, 60), got {settle_s!r}")
        self.settle_s = float(settle_s)
        self._sleep = sleep

    def _key(self, source: str, suffix: str) -> str:
        return f"{self.namespace}/{validate_source(source)}/{suffix}"

    async def append(self, record: WaitRecord) -> None:
        """Upsert ``record`` under its own key, then apply the retention."""
        if not isinstance(record, WaitRecord):
            raise TypeError(f"record must be a WaitRecord, got {record!r}")
        prefix = self._key(record.source, "wait/")
        waits = self._index(prefix, await self.backend.keys(prefix))
        digest = _digest(record.key)[:24]
        mine = waits.get(digest, [])
        millis = int(record.ended_at * 1000)
        key = mine[-1] if mine else f"{prefix}{millis:013d}-{digest}"
        await self.backend.set(key, _dumps(record.to_json_dict()))
        waits[digest] = [*mine[:-1], key]
        by_age = sorted(waits.values(), key=lambda group: group[-1])
        expired = len(by_age) - self.retention
        doomed: list[str] = []
        for age, group in enumerate(by_age):  # expired waits go whole, others keep one
            doomed.extend(group if age < expired else group[:-1])
        for stale in doomed:
            await self.backend.delete(stale)

    async def history(self, source: str, limit: int | None = None) -> list[WaitRecord]:
        """Return the newest ``limit`` records of ``source`` (all if ``None``)."""
        limit = check_limit(limit)
        prefix = self._key(source, "wait/")
        waits = self._index(prefix, await self.backend.keys(prefix))
        newest = sorted(group[-1] for group in waits.values())
        keys = newest if limit is None else newest[max(len(newest) - limit, 0) :]
        values = await self._gather(self.backend.get, keys)
        decoded = (self._decode_record(source, k, v) for k, v in zip(keys, values, strict=True))
        return newest_last(record for record in decoded if record is not None)

    async def sources(self) -> list[str]:
        """Return the sources that have any key under the namespace, sorted."""
        root = f"{self.namespace}/"
        names = {key[len(root) :].split("/", 1)[0] for key in await self.backend.keys(root)}
        return sorted(name for name in names if SOURCE_PATTERN.fullmatch(name))

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
            aside = self._key(source, f"corrupt/{_digest(raw)}")
            logger.warning("Moving damaged breaker state %s to %s", key, aside)
            await self.backend.set(aside, raw)
        token = uuid.uuid4().hex
        value = {"snapshot": new.to_json_dict(), "lineage": [*lineage, token][-LINEAGE:]}
        await self.backend.set(key, _dumps(value))
        await self._sleep(self.settle_s)  # let rivals that read before us land first
        back = await self.backend.get(key)
        return new if token in _lineage(back) else None

    def _index(self, prefix: str, keys: list[str]) -> dict[str, list[str]]:
        waits: dict[str, list[str]] = {}
        for key in sorted(keys):
            match = key.startswith(prefix) and _WAIT_SUFFIX.fullmatch(key[len(prefix) :])
            if not match:
                logger.warning("Skipping foreign key %s under %s", key, prefix)
                continue
            waits.setdefault(match.group(2), []).append(key)
        return waits

    async def _gather(
        self, fn: Callable[[str], Awaitable[str | None]], keys: list[str]
    ) -> list[str | None]:
        gate = asyncio.Semaphore(self.read_concurrency)

        async def one(key: str) -> str | None:
            async with gate:
                return await fn(key)

        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(key)) for key in keys]
        return [task.result() for task in tasks]

    @staticmethod
    def _decode_record(source: str, key: str, raw: str | None) -> WaitRecord | None:
        if raw is None:  # pruned between listing and reading
            return None
        try:
            record = WaitRecord.from_json_dict(json.loads(raw))
            if record.source != source:
                raise ValueError(f"record of source {record.source!r}")
        except (ValueError, RecursionError) as exc:
            logger.warning("Skipping damaged wait record %s: %s", key, exc)
            return None
        return record

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


def _lineage(raw: str | None) -> list[str]:
    try:
        tokens = json.loads(raw or "{}")["lineage"]
    except (ValueError, RecursionError, TypeError, KeyError):
        return []
    if not isinstance(tokens, list):
        return []
    return [token for token in tokens if isinstance(token, str)]
