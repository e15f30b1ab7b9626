"""AirflowStore specifics: key layout, duplicate keys, damage, optimistic updates."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable

import pytest

from waitwise.triggers.breaker import BreakerSnapshot
from waitwise.triggers.store import AirflowStore, StoreConflictError, VariableBackend

from .fakes import SRC, MemoryKV, bump, make_record

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
    return AirflowStore(kv, retention=100, settle_s=0.25, sleep=sleep)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


async def test_key_layout(store, kv):
    await store.append(make_record(1))
    await store.update_breaker(SRC, bump)
    assert sorted(kv.data) == [BREAKER, wait_key(1)]
    assert json.loads(kv.data[wait_key(1)]) == make_record(1).to_json_dict()


async def test_rewrite_of_a_wait_keeps_its_first_key(store, kv):
    await store.append(make_record(1))
    await store.append(make_record(1, ended_at=make_record(5).ended_at, pokes=9))
    assert (sorted(kv.data), await store.history(SRC)) == (
        [wait_key(1)],
        [make_record(1, ended_at=make_record(5).ended_at, pokes=9)],
    )


async def test_duplicate_keys_of_one_wait_read_once_and_are_cleaned_up(store, kv):
    """Two simultaneous first writes of one wait (HA) can leave two keys."""
    older, newer = wait_key(1, ms=1), wait_key(1)
    kv.data[older] = json.dumps(make_record(1, pokes=1).to_json_dict())
    kv.data[newer] = json.dumps(make_record(1).to_json_dict())
    assert await store.history(SRC) == [make_record(1)]
    await store.append(make_record(2))
    assert sorted(kv.data) == [newer, wait_key(2)]


async def test_damaged_values_and_foreign_keys_are_skipped_with_warnings(store, kv, caplog):
    await store.append(make_record(1))
    kv.data[wait_key(2)] = "{not json"
    kv.data[wait_key(3)] = json.dumps(make_record(3, source="partner").to_json_dict())
    kv.data["waitwise/finance/wait/hand-made"] = "{}"
    with caplog.at_level(logging.WARNING):
        assert await store.history(SRC) == [make_record(1)]
    assert [m.split(":")[0] for m in warnings_of(caplog)] == [
        "Skipping foreign key waitwise/finance/wait/hand-made under waitwise/finance/wait/",
        f"Skipping damaged wait record {wait_key(2)}",
        f"Skipping damaged wait record {wait_key(3)}",
    ]


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


async def test_a_wait_pruned_between_listing_and_reading_is_silently_gone(store, kv, caplog):
    await store.append(make_record(1))
    await store.append(make_record(2))
    kv.hooks[("keys", kv.counts["keys"] + 1)] = lambda: kv.data.pop(wait_key(1))
    with caplog.at_level(logging.WARNING):
        assert (await store.history(SRC), warnings_of(caplog)) == ([make_record(2)], [])


@pytest.mark.parametrize(
    "rival",
    ["garbage", json.dumps({"snapshot": BreakerSnapshot(SRC).to_json_dict(), "lineage": "x"})],
)
async def test_a_value_replaced_during_settle_without_our_token_is_retried(store, kv, sleep, rival):
    sleep.during.append(lambda: kv.data.update({BREAKER: rival}))
    stored = await store.update_breaker(SRC, bump)
    assert (stored.version, stored.consecutive_failures, sleep.delays) == (1, 1, [0.25, 0.25])
