"""Fakes and process workers for the store tests (importable by spawned children)."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from waitwise.triggers.breaker import BreakerSnapshot
from waitwise.triggers.store import (
    AirflowStore,
    CompactionPolicy,
    FileStore,
    WaitOutcome,
    WaitRecord,
    WaitStore,
)

SRC = "finance"
T0 = 1_700_000_000.0
NOW = T0 + 10 * 86_400.0
"""The stores' clock in tests: ten days after the first record."""


NOT_IN_0_1_0 = ("last_miss_at", "model_version", "eta_at", "eta_low_at", "eta_high_at")
"""The record fields 0.1.0 (schema 1) did not write."""


def as_0_1_0(record: WaitRecord) -> dict[str, Any]:
    """Return ``record`` as 0.1.0 wrote it: schema 1, without the later fields."""
    data = {k: v for k, v in record.to_json_dict().items() if k not in NOT_IN_0_1_0}
    return {**data, "schema": 1}


def make_record(i: int, source: str = SRC, **changes: Any) -> WaitRecord:
    """Return the i-th wait of a daily DAG: run ``run-i``, ended at T0 + i minutes."""
    record = WaitRecord(
        source=source,
        profile="high",
        dag_id="ingest",
        task_id="wait_for_file",
        run_id=f"run-{i}",
        try_number=1,
        started_at=T0 + 60 * i - 30,
        ended_at=T0 + 60 * i,
        outcome=WaitOutcome.SUCCESS,
        scheduled_at=T0 + 60 * i - 60,
        first_seen_at=T0 + 60 * i - 5,
        detected_at=T0 + 60 * i,
        pokes=3,
    )
    return replace(record, **changes)


def bump(snapshot: BreakerSnapshot | None, source: str = SRC) -> BreakerSnapshot:
    """Count one more failure: the counter proves how many updates survived."""
    current = snapshot or BreakerSnapshot(source)
    return replace(current, consecutive_failures=current.consecutive_failures + 1)


class MemoryKV:
    """In-memory KeyValueBackend; each operation is atomic, as a DB row write is."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.counts: Counter[str] = Counter()
        self.hooks: dict[tuple[str, int], Callable[[], None]] = {}
        self._lock = threading.Lock()

    def _after(self, op: str) -> None:
        with self._lock:
            self.counts[op] += 1
            hook = self.hooks.pop((op, self.counts[op]), None)
        if hook is not None:
            hook()  # a rival writer acting right after this operation

    async def get(self, key: str) -> str | None:
        with self._lock:
            value = self.data.get(key)
        self._after("get")
        return value

    async def set(self, key: str, value: str) -> None:
        with self._lock:
            self.data[key] = value
        self._after("set")

    async def delete(self, key: str) -> None:
        with self._lock:
            self.data.pop(key, None)
        self._after("delete")

    async def keys(self, prefix: str) -> list[str]:
        with self._lock:
            keys = [key for key in self.data if key.startswith(prefix)]
        self._after("keys")
        return keys


class DirectoryKV:
    """KeyValueBackend with one file per key: atomic per operation across processes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / quote(key, safe="")

    async def get(self, key: str) -> str | None:
        path = self._path(key)
        try:
            return await asyncio.to_thread(path.read_text)
        except FileNotFoundError:
            return None

    async def set(self, key: str, value: str) -> None:
        tmp = self.root / f".{uuid.uuid4().hex}.tmp"  # concurrent sets of one loop differ
        await asyncio.to_thread(tmp.write_text, value)
        await asyncio.to_thread(os.replace, tmp, self._path(key))

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, missing_ok=True)

    async def keys(self, prefix: str) -> list[str]:
        names = await asyncio.to_thread(os.listdir, self.root)
        keys = [unquote(name) for name in names if not name.startswith(".")]
        return [key for key in keys if key.startswith(prefix)]


def open_store(
    kind: str, root: Path, retention: int = 1000, every: int | None = None
) -> AirflowStore | FileStore:
    """Open a store that every process given the same ``root`` shares."""
    policy = CompactionPolicy(every=every, segment_records=16)
    if kind == "file":
        return FileStore(root, retention=retention, compaction=policy, now=lambda: NOW)
    # Real processes race for real: settle_s must cover a rival's read-to-write gap.
    kv = DirectoryKV(root)
    return AirflowStore(kv, retention=retention, settle_s=0.05, compaction=policy, now=lambda: NOW)


async def hammer(store: WaitStore, worker: int, count: int) -> None:
    """Append ``count`` distinct waits and bump the breaker as often, interleaved.

    Every wait is written twice (a trigger that ran twice: the rerun has one more poke
    and ends a second later), and the waits of all workers share 50 hours, so
    compactions (of stores opened with ``every``, and explicit ones every fifth wait)
    merge each other's records and segments while others append.
    """
    for i in range(count):
        record = make_record(worker * 10_000 + i, ended_at=T0 + 3_600.0 * (i % 50) + worker)
        await store.append(record)
        await store.update_breaker(SRC, bump)
        await store.append(replace(record, pokes=record.pokes + 1, ended_at=record.ended_at + 1))
        if i % 5 == worker % 5 and isinstance(store, AirflowStore | FileStore):
            await store.compact(SRC)
    if isinstance(store, AirflowStore):
        await store.wait_compactions()


def hammer_in_process(kind: str, root: str, worker: int, count: int) -> None:
    """Run :func:`hammer` in a fresh event loop (a process entry point)."""
    asyncio.run(hammer(open_store(kind, Path(root), every=7), worker, count))
