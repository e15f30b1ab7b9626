"""Learned policies in the engine: one history read per source, fail-open, the wait's plan."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import random
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.triggers.store.fakes import make_record
from tests.triggers.test_base import T0, drive, scripted
from waitwise.triggers.adaptive import Adaptive
from waitwise.triggers.adaptive.tuning import Change, Setting
from waitwise.triggers.engine.learning import (
    REFRESH_S,
    RETRY_S,
    Learner,
    resume_tuning,
    revert_tuning,
)
from waitwise.triggers.metrics import (
    ADAPTIVE_FALLBACKS,
    ADAPTIVE_PLANNED,
    ADAPTIVE_TUNED,
    DETECTION_LATENCY,
    ETA_ERROR,
)
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
    poll = Adaptive(5.0, max_interval_s=60.0, min_history=10, trust_from=0).to_config()
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
    # Arrivals came 95-105 s after the schedule: sparse (60 s) before, 5 s through it (the
    # first dense poke at +100 still sees a +95 arrival within the 5 s target), then sparse
    # again once the data should have been there.
    assert offsets == [0.0, 60.0, 100.0, 105.0, 110.0, 115.0, 175.0]
    timings = {name: value for kind, name, value, _ in sink.records if kind == "timing"}
    assert timings[DETECTION_LATENCY] == pytest.approx(60.0)  # seen at +175, missed at +115
    assert timings[ETA_ERROR] == pytest.approx(T0 + 175.0 - payload["eta"]["at"])


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
        5.0,
        max_interval_s=60.0,
        dynamic_timeout=True,
        timeout_quantile=0.9,
        timeout_margin=1.2,
        trust_from=0,
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


def late_history(n: int) -> list[WaitRecord]:
    """``n`` daily waits whose detections came 300 s after the last miss (over a 60 s target)."""
    return [
        dataclasses.replace(r, last_miss_at=r.first_seen_at - 300.0)  # type: ignore[operator]
        for r in history(n, arrival=1000.0)
    ]


async def test_auto_tuning_records_one_change_a_day_with_its_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store, clock, sink = FileStore(tmp_path), FakeClock(now_s=T0), RecordingSink()
    await store.append_many(late_history(40))
    learner = Learner(clock, sink)
    policy = Adaptive(60.0, max_interval_s=1800.0, auto_tune=True)
    window = Window(0, T0, T0 + 6 * 3600)
    with caplog.at_level(logging.INFO, logger="waitwise"):
        for _ in range(3):
            assert await learner.bound(policy, store, "feed", {}, T0, window) is not None
            await learner.wait_tunings()
    changes = await store.changes("feed")
    assert len(changes) == 1
    change = Change.from_json_dict(changes[0])
    assert (change.at, change.action) == (T0, "tune")
    assert change.setting.max_interval_s == pytest.approx(1800.0 / 1.25)
    assert "100.0% of 40 detections came over 60 s late" in change.reason
    assert sink.names().count(ADAPTIVE_TUNED) == 1
    assert any(f"Tuned feed: {change.reason}" == r.getMessage() for r in caplog.records)
    # The next day (a fresh read), the next step; a wait that opened before it is untouched.
    clock.advance(DAY)
    learner = Learner(clock, sink)
    tomorrow = Window(0, T0 + DAY, T0 + DAY + 6 * 3600)
    await learner.bound(policy, store, "feed", {}, T0 + DAY, tomorrow)
    await learner.wait_tunings()
    steps = [Change.from_json_dict(c).setting.max_interval_s for c in await store.changes("feed")]
    assert steps == pytest.approx([1440.0, 1152.0])


async def test_reverting_a_tuning_restores_and_holds_until_resumed(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    policy = Adaptive(60.0, max_interval_s=1800.0, auto_tune=True)
    await store.append_change("feed", Change(T0, "tune", Setting(1440.0), "r").to_json_dict())
    undo = await revert_tuning(store, "feed", policy, at=T0 + 10)
    assert (undo.action, undo.setting) == ("revert", Setting(1800.0))
    await store.append_many(late_history(40))
    learner = Learner(FakeClock(now_s=T0 + 2 * DAY), RecordingSink())
    window = Window(0, T0 + 2 * DAY, T0 + 2 * DAY + 3600)
    await learner.bound(policy, store, "feed", {}, T0 + 2 * DAY, window)
    await learner.wait_tunings()
    assert len(await store.changes("feed")) == 2  # held: no tuning
    again = await resume_tuning(store, "feed", policy, at=T0 + 2 * DAY)
    assert (again.action, again.setting) == ("resume", Setting(1800.0))
    with pytest.raises(ValueError, match="not held"):
        await resume_tuning(store, "feed", policy, at=T0 + 2 * DAY)


class NoChangeLog(FileStore):
    async def changes(self, source: str) -> list[dict[str, Any]]:
        raise OSError("change log unreachable")

    async def append_change(self, source: str, change: Mapping[str, Any]) -> None:
        raise OSError("change log read-only")


async def test_a_change_log_that_fails_leaves_the_waits_planned_untuned(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store, sink = NoChangeLog(tmp_path), RecordingSink()
    await store.append_many(late_history(40))
    learner = Learner(FakeClock(now_s=T0), sink)
    policy = Adaptive(60.0, max_interval_s=1800.0, auto_tune=True)
    with caplog.at_level(logging.WARNING, logger="waitwise"):
        bound = await learner.bound(policy, store, "feed", {}, T0, Window(0, T0, T0 + 3600))
        await learner.wait_tunings()
    assert bound is not None
    assert bound.model_version is not None
    messages = [r.getMessage() for r in caplog.records]
    assert "The change log of feed cannot be read; it plans untuned" in messages
    assert "Tuning feed failed; its setting stays" in messages
    assert ADAPTIVE_TUNED not in sink.names()


async def test_a_source_that_is_not_tuned_never_reads_the_change_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = NoChangeLog(tmp_path)  # reading its change log raises
    await store.append_many(late_history(40))
    learner = Learner(FakeClock(now_s=T0), RecordingSink())
    with caplog.at_level(logging.WARNING, logger="waitwise"):
        bound = await learner.bound(
            Adaptive(60.0, trust_from=0), store, "feed", {}, T0, Window(0, T0, T0 + 3600)
        )
    assert bound is not None
    assert bound.model_version is not None
    assert "change log" not in caplog.text
