"""AirflowStore specifics: key layout, duplicate keys, damage, optimistic updates."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from waitwise.triggers.breaker import BreakerSnapshot
from waitwise.triggers.store import (
    DEFAULT_MAX_AGE_S,
    AirflowStore,
    CompactionPolicy,
    CompactionReport,
    StoreConflictError,
    VariableBackend,
    WaitRecord,
)
from waitwise.triggers.store.kv_layout import digest
from waitwise.triggers.store.segments import encode_segment

from .fakes import NOW, SRC, T0, MemoryKV, as_0_1_0, bump, make_record

MANUAL = CompactionPolicy(every=None)


def quick_store(
    kv: MemoryKV,
    compaction: CompactionPolicy = MANUAL,
    retention: int = 1000,
    max_age_s: float = DEFAULT_MAX_AGE_S,
) -> AirflowStore:
    """A store whose settle wait is zero and whose clock stands at NOW."""
    return AirflowStore(
        kv,
        compaction=compaction,
        retention=retention,
        max_age_s=max_age_s,
        settle_s=0,
        now=lambda: NOW,
    )


BREAKER = "waitwise/finance/breaker"


def wait_key(i: int, ms: int | None = None) -> str:
    key = json.dumps(list(make_record(i).key), separators=(",", ":"))
    digest = hashlib.sha256(key.encode()).hexdigest()
    ms = int(make_record(i).ended_at * 1000) if ms is None else ms
    return f"waitwise/finance/wait/{ms:013d}-{digest[:24]}"


def rival_value(failures: int, token: str = "rival") -> str:
    snapshot = BreakerSnapshot(SRC, consecutive_failures=failures, version=failures)
    return json.dumps({"snapshot": snapshot.to_json_dict(), "lineage": [token]})


class RecordingSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []
        self.during: list[Callable[[], None]] = []  # run while "sleeping", one per call

    async def __call__(self, delay):
        self.delays.append(delay)
        if self.during:
            self.during.pop(0)()


@pytest.fixture
def kv():
    return MemoryKV()


@pytest.fixture
def sleep():
    return RecordingSleep()


@pytest.fixture
def store(kv, sleep):
    policy = CompactionPolicy(every=None)
    return AirflowStore(
        kv, retention=100, settle_s=0.25, sleep=sleep, compaction=policy, now=lambda: NOW
    )


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


LOOSE = re.compile(r"waitwise/finance/wait/[0-9a-f]{24}\.[0-9a-f]{32}")
SEGMENT = re.compile(r"waitwise/finance/seg/(\d{8})\.(\d+)\.[0-9a-f]{32}")
DAY = 86_400.0


def on_day(i: int, n: int = 0, **changes: Any) -> WaitRecord:
    """The n-th wait of day i (days from T0, one minute apart)."""
    return make_record(100 * i + n, ended_at=T0 + i * DAY + 60 * n, **changes)


def segments(kv: MemoryKV) -> list[tuple[str, int]]:
    found = (SEGMENT.fullmatch(key) for key in sorted(kv.data))
    return [(m.group(1), int(m.group(2))) for m in found if m]


def loose(kv: MemoryKV) -> list[str]:
    return sorted(key for key in kv.data if LOOSE.fullmatch(key))


async def test_key_layout(store, kv):
    await store.append(make_record(1))
    await store.update_breaker(SRC, bump)
    [key] = loose(kv)
    assert sorted(kv.data) == [BREAKER, key]
    assert key.split("/")[-1][:24] == wait_key(1).split("-")[-1]
    assert json.loads(kv.data[key]) == make_record(1).to_json_dict()


async def test_appends_cost_one_write_and_never_read(store, kv):
    for i in range(50):
        await store.append(make_record(i))
    assert dict(kv.counts) == {"set": 50}


async def test_a_wait_written_twice_is_read_once_newest_ended_at_first_or_last(store, kv):
    later = make_record(1, ended_at=make_record(5).ended_at, pokes=9)
    await store.append(later)
    await store.append(make_record(1))  # an older write arriving late
    assert (len(loose(kv)), await store.history(SRC)) == (2, [later])
    await store.compact(SRC)
    assert (loose(kv), segments(kv), await store.history(SRC)) == ([], [("20231114", 1)], [later])


async def test_compaction_folds_loose_records_into_day_segments(store, kv, sleep):
    records = [on_day(0, 0), on_day(0, 1), on_day(1, 0)]
    for record in records:
        await store.append(record)
    report = await store.compact(SRC)
    assert (loose(kv), segments(kv), sleep.delays) == (
        [],
        [("20231114", 2), ("20231115", 1)],
        [0.25],
    )
    assert (report, await store.history(SRC)) == (CompactionReport(merged=3, written=2), records)


async def test_compaction_merges_part_filled_segments_and_never_rewrites_full_ones(kv, sleep):
    store = quick_store(kv, CompactionPolicy(every=None, segment_records=2))
    for n in range(3):
        await store.append(on_day(0, n))
        await store.compact(SRC)
    full = [key for key in kv.data if key.startswith("waitwise/finance/seg/20231114.2.")]
    await store.append(on_day(0, 3))
    await store.compact(SRC)
    assert segments(kv) == [("20231114", 2), ("20231114", 2)]
    assert full[0] in kv.data
    assert await store.history(SRC) == [on_day(0, n) for n in range(4)]


async def test_a_segment_that_does_not_read_back_keeps_its_inputs(store, kv, sleep, caplog):
    await store.append(on_day(0))

    def damage() -> None:
        [key] = [k for k in kv.data if SEGMENT.fullmatch(k)]
        kv.data[key] = kv.data[key][:-5]

    sleep.during.append(damage)
    with caplog.at_level(logging.WARNING):
        report = await store.compact(SRC)
    assert (report.unconfirmed, len(loose(kv)), segments(kv)) == (1, 1, [])
    assert await store.history(SRC) == [on_day(0)]
    assert f"History segments of {SRC} 20231114 did not read back; kept its inputs" in (
        warnings_of(caplog)
    )


async def test_records_written_by_0_1_0_are_read_and_compacted(store, kv):
    kv.data[wait_key(1)] = json.dumps(as_0_1_0(make_record(1)))
    await store.append(make_record(2))
    before = await store.history(SRC)
    await store.compact(SRC)
    assert [r.schema for r in before] == [1, 3]
    assert (await store.history(SRC), wait_key(1) in kv.data) == (before, False)


async def test_retention_by_count_drops_the_oldest_whole_segments(kv):
    store = quick_store(kv, retention=3)
    for i in range(8):
        await store.append(on_day(i))
    report = await store.compact(SRC)
    assert (report.expired, [day for day, _ in segments(kv)]) == (
        5,
        ["20231119", "20231120", "20231121"],
    )


async def test_retention_by_age_drops_whole_days(kv):
    store = quick_store(kv, max_age_s=5 * DAY)
    for i in range(10):
        await store.append(on_day(i))
    await store.compact(SRC)
    assert [r.run_id for r in await store.history(SRC)] == [f"run-{100 * i}" for i in range(5, 10)]
    assert len(segments(kv)) == 5


async def test_appends_compact_in_the_background_first_then_every_nth(kv):
    store = quick_store(kv, CompactionPolicy(every=3))
    listings = []
    for i in range(7):
        await store.append(make_record(i))
        await store.wait_compactions()
        listings.append(kv.counts["keys"])
    assert (listings, loose(kv)) == ([1, 1, 1, 2, 2, 2, 3], [])


async def test_appends_compact_when_the_interval_passed(kv):
    clock = [NOW]
    policy = CompactionPolicy(every=100, interval_s=60)
    store = AirflowStore(kv, compaction=policy, settle_s=0, now=lambda: clock[0])
    for step in (0, 30, 40, 10):
        clock[0] += step
        await store.append(make_record(step))
        await store.wait_compactions()
    assert kv.counts["keys"] == 2  # at the first append, then 70 s later


async def test_a_failing_background_compaction_is_logged_not_raised(kv, caplog):
    store = quick_store(kv, CompactionPolicy(every=1))

    def fail() -> None:
        raise OSError("database is locked")

    kv.hooks[("keys", 1)] = fail
    with caplog.at_level(logging.WARNING):
        await store.append(make_record(1))
        await store.wait_compactions()
    assert warnings_of(caplog) == [f"Compacting the history of {SRC} failed"]


async def test_damage_is_skipped_with_warnings_and_compaction_moves_loose_damage_aside(
    store, kv, caplog
):
    await store.append(make_record(1))
    bad_loose = "waitwise/finance/wait/" + "a" * 24 + "." + "b" * 32
    kv.data[bad_loose] = "{not json"
    other = "waitwise/finance/wait/" + "c" * 24 + "." + "d" * 32
    kv.data[other] = json.dumps(make_record(3, source="partner").to_json_dict())
    kv.data["waitwise/finance/wait/hand-made"] = "{}"
    bad_segment = "waitwise/finance/seg/20231114.3." + "e" * 32
    kv.data[bad_segment] = "not a segment"
    partly = "waitwise/finance/seg/20231114.2." + "f" * 32
    kv.data[partly] = encode_segment([make_record(4)], compress=False) + "\n{oops"
    bad_zip = "waitwise/finance/seg/20231114.1." + "9" * 32
    kv.data[bad_zip] = encode_segment([make_record(5)])[:-8]
    with caplog.at_level(logging.WARNING):
        assert await store.history(SRC) == [make_record(1), make_record(4)]
        assert sorted(await store.scan(SRC, list), key=lambda r: r.order) == [
            make_record(1),
            make_record(4),
        ]
        await store.compact(SRC)
        assert await store.history(SRC) == [make_record(1), make_record(4)]
    kept = (bad_loose in kv.data, bad_segment in kv.data, partly in kv.data, bad_zip in kv.data)
    assert kept == (False, True, True, True)
    assert kv.data[f"waitwise/finance/corrupt/{digest('{not json')}"] == "{not json"
    assert {m.split(":")[0] for m in warnings_of(caplog)} >= {
        "Skipping foreign key waitwise/finance/wait/hand-made under waitwise/finance/",
        f"Skipping damaged history segment {bad_segment}",
        f"Skipping damaged history segment {bad_zip}",
        f"Skipping damaged wait record {partly}",
        f"Skipping damaged wait record {bad_loose}",
        f"Moving damaged wait record {bad_loose} to waitwise/finance/corrupt/{digest('{not json')}",
    }


async def test_a_read_racing_a_compaction_lists_again(store, kv, caplog):
    await store.append(make_record(1))
    await store.append(make_record(2))

    def compact_record_1() -> None:  # what a rival compactor does between our list and get
        key = next(k for k in loose(kv) if json.loads(kv.data[k])["run_id"] == "run-1")
        kv.data["waitwise/finance/seg/20231114.1." + "0" * 32] = encode_segment([make_record(1)])
        del kv.data[key]

    kv.hooks[("keys", kv.counts["keys"] + 1)] = compact_record_1
    with caplog.at_level(logging.WARNING):
        assert (await store.history(SRC), warnings_of(caplog)) == (
            [make_record(1), make_record(2)],
            [],
        )


class BulkKV(MemoryKV):
    """A MemoryKV that also lists values (as the api-server and REST paths do)."""

    async def items(self, prefix: str) -> dict[str, str]:
        self._after("items")
        return {k: v for k, v in self.data.items() if k.startswith(prefix)}


async def test_a_bulk_reader_reads_history_in_one_call():
    kv = BulkKV()
    store = quick_store(kv)
    for i in range(5):
        await store.append(on_day(i % 2, i))
    await store.compact(SRC)
    await store.append(on_day(3))
    before = dict(kv.counts)
    records = await store.history(SRC)
    assert (len(records), kv.counts - Counter(before)) == (6, Counter(items=1))


@pytest.mark.parametrize(
    "raw",
    [
        "{",
        "[]",
        '{"snapshot": {}}',
        json.dumps({"snapshot": BreakerSnapshot("x").to_json_dict()}),
    ],
)
async def test_damaged_breaker_is_copied_aside_before_it_is_replaced(store, kv, caplog, raw):
    kv.data[BREAKER] = raw
    with caplog.at_level(logging.WARNING):
        before = await store.get_breaker(SRC)
        after = await store.update_breaker(SRC, bump)
    digest = hashlib.sha256(json.dumps(raw).encode()).hexdigest()
    aside = f"waitwise/finance/corrupt/{digest}"
    assert (before, after.version, kv.data[aside]) == (None, 1, raw)
    assert f"Moving damaged breaker state {BREAKER} to {aside}" in warnings_of(caplog)


async def test_rival_write_before_ours_is_seen_and_built_upon(store, kv):
    kv.hooks[("get", 1)] = lambda: kv.data.update({BREAKER: rival_value(10)})
    stored = await store.update_breaker(SRC, bump)
    assert (stored.consecutive_failures, stored.version, kv.counts["set"]) == (
        11,
        11,
        1,
    )


async def test_rival_overwrite_during_settle_is_detected_and_retried(store, kv, sleep):
    sleep.during.append(lambda: kv.data.update({BREAKER: rival_value(10)}))
    stored = await store.update_breaker(SRC, bump)
    lineage = json.loads(kv.data[BREAKER])["lineage"]
    assert (stored.consecutive_failures, stored.version, sleep.delays, lineage[0]) == (
        11,
        11,
        [0.25, 0.25],
        "rival",
    )


async def test_a_rival_that_always_wins_raises_a_conflict(kv, sleep):
    store = AirflowStore(kv, max_attempts=3, sleep=sleep)
    rivals = [rival_value(n) for n in range(3)]
    sleep.during.extend([lambda: kv.data.update({BREAKER: rivals.pop()})] * 3)
    with pytest.raises(StoreConflictError, match="breaker of 'finance' changed under all 3"):
        await store.update_breaker(SRC, bump)


async def test_lineage_is_bounded(store, kv):
    for _ in range(20):
        await store.update_breaker(SRC, bump)
    assert len(json.loads(kv.data[BREAKER])["lineage"]) == 16


async def test_sources_ignores_foreign_keys(store, kv):
    kv.data.update({"waitwise/../x": "1", "waitwise/partner/breaker": "1", "other/finance": "1"})
    await store.append(make_record(1))
    assert await store.sources() == ["finance", "partner"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"namespace": "a/b"}, "namespace must match"),
        ({"namespace": "n" * 33}, "namespace must match"),
        ({"max_attempts": 0}, "max_attempts must be an int >= 1, got 0"),
        ({"read_concurrency": 1.5}, "read_concurrency must be an int >= 1, got 1.5"),
        ({"settle_s": -1}, r"settle_s must be seconds in \[0, 60\), got -1"),
        ({"settle_s": "1"}, r"settle_s must be seconds in \[0, 60\), got '1'"),
    ],
)
def test_invalid_options_are_rejected(kv, kwargs, message):
    with pytest.raises(ValueError, match=message):
        AirflowStore(kv, **kwargs)


def test_default_backend_is_airflow_variables():
    assert isinstance(AirflowStore().backend, VariableBackend)


async def test_namespace_separates_stores(kv):
    await AirflowStore(kv, namespace="blue", settle_s=0).append(make_record(1))
    assert await AirflowStore(kv, namespace="green", settle_s=0).history(SRC) == []


@pytest.mark.parametrize(
    "rival",
    ["garbage", json.dumps({"snapshot": BreakerSnapshot(SRC).to_json_dict(), "lineage": "x"})],
)
async def test_a_value_replaced_during_settle_without_our_token_is_retried(store, kv, sleep, rival):
    sleep.during.append(lambda: kv.data.update({BREAKER: rival}))
    stored = await store.update_breaker(SRC, bump)
    assert (stored.version, stored.consecutive_failures, sleep.delays) == (1, 1, [0.25, 0.25])


async def test_a_damaged_change_is_skipped_with_a_warning(store, kv, caplog):
    await store.append_change(SRC, {"at": 5.0})
    kv.data["waitwise/finance/tune/0000000000001." + "a" * 32] = "{oops"
    kv.data["waitwise/finance/tune/0000000000002." + "b" * 32] = '{"at": "soon"}'
    with caplog.at_level(logging.WARNING):
        assert await store.changes(SRC) == [{"at": 5.0}]
    assert (
        sum("Skipping damaged change in waitwise/finance/tune/" in m for m in warnings_of(caplog))
        == 2
    )
