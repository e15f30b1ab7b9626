"""Learned policies in the engine: one history read per source, fail-open, the wait's plan."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.triggers.store.fakes import make_record
from tests.triggers.test_base import T0, drive, scripted
from waitwise.triggers.adaptive import Adaptive
from waitwise.triggers.engine.learning import REFRESH_S, RETRY_S, Learner
from waitwise.triggers.metrics import ADAPTIVE_FALLBACKS, ADAPTIVE_PLANNED
from waitwise.triggers.policy import Window
from waitwise.triggers.runtime import Runtime
from waitwise.triggers.store import FileStore, WaitOutcome, WaitRecord
from waitwise.triggers.testing import FakeClock, RecordingSink

_T = TypeVar("_T")

DAY = 86_400.0


def history(n: int, arrival: float = 100.0, seed: int = 0) -> list[WaitRecord]:
    """``n`` daily waits of ``feed`` before T0, arriving ``arrival`` +- 5 s after schedule."""
    rng = random.Random(seed)
    records = []
    for i in range(n):
        at = T0 - (n - i) * DAY
        seen = at + arrival + rng.uniform(-5, 5)
        records.append(
            make_record(
                i,
                source="feed",
                scheduled_at=at,
                started_at=at,
                ended_at=seen,
                first_seen_at=seen,
                detected_at=seen,
                last_miss_at=seen - 2.0,
                outcome=WaitOutcome.SUCCESS,
            )
        )
    return records


class CountingStore(FileStore):
    def __init__(self, root: Path, fail: bool = False) -> None:
        super().__init__(root)
        self.reads, self.fail = 0, fail

    async def scan(self, source: str, fold: Callable[[Iterator[WaitRecord]], _T]) -> _T:
        self.reads += 1
        await asyncio.sleep(0)
        if self.fail:
            raise OSError("store unreachable")
        return await super().scan(source, fold)


async def test_concurrent_waits_of_a_source_share_one_read_until_it_is_stale(
    tmp_path: Path,
) -> None:
    store, clock, sink = CountingStore(tmp_path), FakeClock(now_s=T0), RecordingSink()
    await store.append_many(history(12))
    learner = Learner(clock, sink)
    found = await asyncio.gather(*(learner.knowledge(store, "feed", {}) for _ in range(20)))
    assert store.reads == 1
    assert all(k is found[0] for k in found)
    assert found[0] is not None
    assert len(found[0]) == 12
    clock.advance(REFRESH_S - 1)
    assert await learner.knowledge(store, "feed", {}) is found[0]
    assert store.reads == 1
    clock.advance(2)
    assert await learner.knowledge(store, "feed", {}) is not found[0]
    assert store.reads == 2


async def test_an_unreadable_history_leaves_the_source_cold_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store, clock, sink = CountingStore(tmp_path, fail=True), FakeClock(now_s=T0), RecordingSink()
    learner = Learner(clock, sink)
    with caplog.at_level(logging.WARNING):
        assert await learner.knowledge(store, "feed", {"source": "feed"}) is None
        assert await learner.knowledge(store, "feed", {"source": "feed"}) is None
        clock.advance(RETRY_S + 1)
        assert await learner.knowledge(store, "feed", {"source": "feed"}) is None
    assert store.reads == 2
    assert sink.names().count(ADAPTIVE_FALLBACKS) == 3
    assert [r.getMessage() for r in caplog.records].count(
        "The history of feed cannot be read; its waits poll by their fallback policy"
    ) == 1


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat()


async def test_a_learned_wait_plans_records_its_model_and_eta_and_logs_its_pokes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store, sink = FileStore(tmp_path), RecordingSink()
    await store.append_many(history(30))
    poll = Adaptive(5.0, max_interval_s=60.0, min_history=10).to_config()
    steps = ["miss"] * 6 + ["hit"]  # found at the 7th poke
    trigger = scripted(*steps, poll=poll, timeout=600.0, source="feed", scheduled_at=_iso(T0))
    with caplog.at_level(logging.INFO, logger="waitwise"):
        event = await drive(trigger, Runtime(clock=FakeClock(now_s=T0), metrics=sink, store=store))
    payload: dict[str, Any] = event.payload
    assert payload["status"] == "success"
    assert payload["model_version"] is not None
    assert payload["model_version"].startswith("30-")
    assert 90 <= payload["eta"]["at"] - T0 <= 110
    assert payload["eta"]["low_at"] < payload["eta"]["at"] < payload["eta"]["high_at"]
    assert ADAPTIVE_PLANNED in sink.names()
    record = (await store.history("feed"))[-1]
    assert (record.schema, record.model_version, record.eta_at) == (
        3,
        payload["model_version"],
        payload["eta"]["at"],
    )
    pokes = next(r.getMessage() for r in caplog.records if "pokes at +[" in r.getMessage())
    offsets = [float(x) for x in pokes.split("+[")[1].split("]")[0].split(", ")]
    # Arrivals came 95-105 s after the schedule: sparse (60 s) before, 5 s through it, then
    # sparse again once the data should have been there.
    assert offsets == [0.0, 60.0, 95.0, 100.0, 105.0, 110.0, 170.0]


async def test_without_history_a_learned_wait_polls_by_its_fallback(tmp_path: Path) -> None:
    poll = Adaptive(5.0, max_interval_s=60.0).to_config()
    trigger = scripted("miss", "miss", "hit", poll=poll, source="feed", scheduled_at=_iso(T0))
    clock = FakeClock(now_s=T0)
    event = await drive(
        trigger, Runtime(clock=clock, metrics=RecordingSink(), store=FileStore(tmp_path))
    )
    assert (event.payload["status"], event.payload["model_version"]) == ("success", None)
    assert clock.sleeps[:2] == [5.0, 5.0]


async def test_a_learned_deadline_ends_the_wait_early_and_is_recorded(tmp_path: Path) -> None:
    store, clock = FileStore(tmp_path), FakeClock(now_s=T0)
    await store.append_many(history(30))
    poll = Adaptive(
        5.0, max_interval_s=60.0, dynamic_timeout=True, timeout_quantile=0.9, timeout_margin=1.2
    ).to_config()
    trigger = scripted(poll=poll, timeout=600.0, source="feed", scheduled_at=_iso(T0))
    event = await drive(trigger, Runtime(clock=clock, metrics=RecordingSink(), store=store))
    payload: dict[str, Any] = event.payload
    # Arrivals came 95-105 s after the schedule: Q(0.9) ~ 104 s, times 1.2 ~ 125 s (not 600 s).
    assert payload["status"] == "timeout"
    assert 115 <= payload["deadline"] - T0 <= 135
    assert clock.now_s == payload["deadline"]
    record = (await store.history("feed"))[-1]
    assert (record.outcome, record.deadline_at) == (WaitOutcome.TIMEOUT, payload["deadline"])


async def test_a_plan_that_fails_after_its_wait_went_on_is_logged_not_lost(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = FileStore(tmp_path)
    await store.append_many(history(12))
    learner = Learner(FakeClock(now_s=T0), RecordingSink())
    gate = asyncio.Event()

    class Slow(Adaptive):
        def bind(self, *args: Any) -> Any:
            raise RuntimeError("the model blew up")

    async def slow_bound(*args: Any) -> Any:
        await gate.wait()
        return Slow().bind()

    window = Window(0, T0, T0 + 600)
    with caplog.at_level(logging.WARNING), pytest.MonkeyPatch.context() as mp:
        mp.setattr(learner, "bound", slow_bound)
        mp.setattr("waitwise.triggers.engine.learning.PLAN_WAIT_S", 0.01)
        assert await learner.bound_within(Adaptive(), store, "feed", {}, T0, window) is None
        gate.set()
        for _ in range(5):
            await asyncio.sleep(0)
    assert "Planning a wait failed after its wait went on" in caplog.text
