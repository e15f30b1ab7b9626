"""The wait engine with a second, test-only trigger kind: windows, breaker, history, errors."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest
from airflow.triggers.base import TaskFailedEvent, TaskSkippedEvent, TriggerEvent

from waitwise.triggers.base import PolicyTrigger, rebuilding
from waitwise.triggers.breaker import BreakerConfig, BreakerSnapshot, BreakerState
from waitwise.triggers.engine.progress import ProbeResult
from waitwise.triggers.errors import ProbeError
from waitwise.triggers.events import FoundItem
from waitwise.triggers.metrics import (
    BREAKER_EVENT_PREFIX,
    POKES,
    RECORD_FAILURES,
    REOPENS,
    WAIT_SECONDS,
    WAITS_CANCELLED,
    WAITS_REJECTED,
    WAITS_TIMED_OUT,
)
from waitwise.triggers.policy import Constant
from waitwise.triggers.profiles import OnDeadline, RetryStrategy
from waitwise.triggers.runtime import Runtime, use_runtime
from waitwise.triggers.spec import WaitSpec
from waitwise.triggers.store import FileStore, WaitOutcome
from waitwise.triggers.testing import FakeClock, RecordingSink

T0 = 1_700_000_000.0
HIT = [FoundItem(path="/data/x", size=1, mtime=T0)]


class Script:
    """A query that plays a script, one step per poke: "miss", "hit", "error" (transient)
    or "boom" (an exception the check cannot recover from); then misses forever."""

    def __init__(self, steps: Iterator[str]) -> None:
        self.steps = steps

    def step(self) -> ProbeResult:
        step = next(self.steps, "miss")
        if step == "error":
            error = ProbeError("flaky")
            error.__cause__ = TimeoutError()
            return error
        if step == "boom":
            return ValueError("embedded null byte")
        return HIT if step == "hit" else []


class ScriptProber:
    """A second trigger kind's prober: the hub batches it exactly as it batches files."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    async def probe_batch(self, queries: Sequence[Script]) -> list[ProbeResult]:
        self.batches.append(len(queries))
        return [query.step() for query in queries]


class Scripted(PolicyTrigger):
    """A test-only trigger kind whose check plays :class:`Script`."""

    prober = ScriptProber()
    script: Iterator[str] = iter(())

    def __init__(self, **wait: Any) -> None:
        with rebuilding(type(self)):
            super().__init__(WaitSpec.from_config(wait))

    async def prepare(self) -> Script:
        return Script(self.script)


def scripted(*steps: str, run: str = "r1", **overrides: Any) -> Scripted:
    kwargs: dict[str, Any] = {
        "poll": Constant(interval=5.0).to_config(),
        "timeout": 10.0,
        "started_at": T0,
    }
    kwargs.update(overrides)
    trigger = Scripted(**kwargs)
    trigger.script = iter(steps)
    trigger.task_instance = SimpleNamespace(  # type: ignore[assignment]
        dag_id="d", task_id="t", run_id=run, map_index=-1, try_number=1
    )
    return trigger


async def drive(trigger: PolicyTrigger, runtime: Runtime) -> TriggerEvent:
    with use_runtime(runtime):
        gen = trigger.run()
        event = await anext(gen)
        with pytest.raises(StopAsyncIteration):
            await anext(gen)
    return event


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "store")


REOPEN = RetryStrategy(
    on_deadline=OnDeadline.REOPEN, max_reopens=2, reopen_backoff=Constant(interval=5.0)
).to_config()


async def test_deadline_reopens_the_wait_then_gives_up(store: FileStore) -> None:
    clock, sink = FakeClock(now_s=T0), RecordingSink()
    trigger = scripted(retry=REOPEN, source="partner", profile="low")
    event = await drive(trigger, Runtime(clock=clock, metrics=sink, store=store))

    # windows [0,10] [15,25] [30,40]: pokes every 5 s inside, a 5 s pause between
    assert clock.sleeps == [5.0] * 8
    assert event.payload["status"] == "timeout"
    assert event.payload["reopens"] == 2
    assert event.payload["pokes"] == 9
    assert event.payload["ended_at"] == T0 + 40
    assert sink.names().count(REOPENS) == 2
    [record] = await store.history("partner")
    assert (record.outcome, record.reopens, record.pokes) == (WaitOutcome.TIMEOUT, 2, 9)


async def test_restart_during_a_pause_waits_for_the_next_window(store: FileStore) -> None:
    clock = FakeClock(now_s=T0 + 12)  # the first window closed at +10; the next opens at +15
    trigger = scripted("miss", "hit", retry=REOPEN)
    event = await drive(trigger, Runtime(clock=clock, metrics=RecordingSink(), store=store))

    assert clock.sleeps == [3.0, 5.0]
    assert event.payload["status"] == "success"
    assert event.payload["reopens"] == 1
    assert event.payload["first_seen_at"] == T0 + 20


async def test_breaker_opens_rejects_without_poking_half_opens_and_closes(
    store: FileStore,
) -> None:
    breaker = BreakerConfig(failure_threshold=2, cooldown_s=100.0).to_config()
    clock, sink = FakeClock(now_s=T0), RecordingSink()
    runtime = Runtime(clock=clock, metrics=sink, store=store)

    def wait(run: str, *steps: str) -> Scripted:
        return scripted(*steps, run=run, started_at=clock.now_s, source="feed", breaker=breaker)

    assert (await drive(wait("r1"), runtime)).payload["status"] == "timeout"
    assert (await drive(wait("r2"), runtime)).payload["status"] == "timeout"
    snapshot = await store.get_breaker("feed")
    assert snapshot is not None
    assert snapshot.state is BreakerState.OPEN

    sleeps_before = len(clock.sleeps)
    rejected = await drive(wait("r3", "hit"), runtime)
    assert rejected.payload["status"] == "breaker_open"
    assert rejected.payload["pokes"] == 0
    assert len(clock.sleeps) == sleeps_before  # ended at once
    assert "feed" in rejected.payload["message"]
    assert "half-open at" in rejected.payload["message"]

    clock.advance(100.0)
    probe = await drive(wait("r4", "hit"), runtime)
    assert probe.payload["status"] == "success"
    snapshot = await store.get_breaker("feed")
    assert snapshot is not None
    assert snapshot.state is BreakerState.CLOSED
    breaker_events = [n for n in sink.names() if n.startswith(BREAKER_EVENT_PREFIX)]
    assert breaker_events == [
        BREAKER_EVENT_PREFIX + "opened",
        BREAKER_EVENT_PREFIX + "rejected",
        BREAKER_EVENT_PREFIX + "half_opened",
        BREAKER_EVENT_PREFIX + "closed",
    ]
    tags = [t for _, n, _, t in sink.records if n.startswith(BREAKER_EVENT_PREFIX)]
    assert all({"source", "profile", "trigger"} <= set(t) for t in tags)  # the wait's tags
    outcomes = [r.outcome for r in await store.history("feed")]
    assert outcomes == [
        WaitOutcome.TIMEOUT,
        WaitOutcome.TIMEOUT,
        WaitOutcome.BREAKER_OPEN,
        WaitOutcome.SUCCESS,
    ]


@pytest.mark.parametrize(
    ("on_breaker_open", "expected"), [("fail", TaskFailedEvent), ("skip", TaskSkippedEvent)]
)
async def test_rejected_wait_ends_in_the_triggerer(
    store: FileStore, on_breaker_open: str, expected: type
) -> None:
    breaker = BreakerConfig(failure_threshold=1, cooldown_s=100.0)
    opened = BreakerSnapshot("feed", BreakerState.OPEN, 1, (False,), T0, reason="manual test")
    await store.update_breaker("feed", lambda _: opened)
    trigger = scripted(
        source="feed",
        breaker=breaker.to_config(),
        on_breaker_open=on_breaker_open,
        end_from_trigger=True,
    )
    sink = RecordingSink()
    event = await drive(trigger, Runtime(clock=FakeClock(now_s=T0 + 1), metrics=sink, store=store))
    assert type(event) is expected
    assert WAITS_REJECTED in sink.names()
    assert POKES not in sink.names()


async def test_a_trigger_that_runs_twice_records_its_wait_once(store: FileStore) -> None:
    for _ in range(2):  # e.g. a restart after the first run wrote its record
        clock = FakeClock(now_s=T0)
        await drive(
            scripted(source="feed"), Runtime(clock=clock, metrics=RecordingSink(), store=store)
        )
    assert [r.run_id for r in await store.history("feed")] == ["r1"]


async def test_probe_errors_then_recovery_return_to_the_nominal_schedule(
    store: FileStore,
) -> None:
    clock, sink = FakeClock(now_s=T0), RecordingSink()
    trigger = scripted("error", "error", "miss", "hit", timeout=100.0)
    event = await drive(trigger, Runtime(clock=clock, metrics=sink, store=store))
    # backoff 1 s then 2 s after the errors (pokes at +0, +1, +3: miss), then the
    # nominal schedule resumes at its next poke, +5 (hit)
    assert clock.sleeps == [1.0, 2.0, 2.0]
    assert event.payload["status"] == "success"
    assert event.payload["errors"] == 2


async def test_each_decision_of_a_second_kind_is_logged_with_its_reason(
    store: FileStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="waitwise.triggers")
    trigger = scripted("error", "miss", "miss", timeout=12.0)
    await drive(trigger, Runtime(clock=FakeClock(now_s=T0), metrics=RecordingSink(), store=store))
    decisions = [r.getMessage() for r in caplog.records if "not found at poke" in r.getMessage()]
    # +0 error (backoff 1 s), +1 miss (next nominal +5), +5 miss (+10), +10 miss (clamp to +12)
    assert decisions == [
        "Scripted not found at poke 1: next poke in 1.000s (probe error backoff (1 in a row))",
        "Scripted not found at poke 2: next poke in 4.000s (policy, schedule attempt 2)",
        "Scripted not found at poke 3: next poke in 5.000s (policy, schedule attempt 3)",
        "Scripted not found at poke 4: next poke in 2.000s (deadline clamp)",
    ]


def test_new_kwargs_round_trip_through_json() -> None:
    trigger = scripted(
        retry=REOPEN,
        source="feed",
        profile="low",
        breaker=BreakerConfig().to_config(),
        on_breaker_open="skip",
        store={"kind": "file", "root": "/tmp/x"},
    )
    classpath, kwargs = trigger.serialize()
    rebuilt = Scripted(**json.loads(json.dumps(kwargs)))
    assert rebuilt.serialize() == (classpath, kwargs)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"source": "bad name"}, "source must match"),
        ({"on_breaker_open": "explode"}, "on_breaker_open must be one of"),
        ({"breaker": {"cooldown_s": -1}}, "cooldown_s"),
        ({"retry": {"on_deadline": "never"}}, "RetryStrategy"),
    ],
)
def test_bad_kwargs_are_named(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        scripted(**overrides)


async def test_timeout_metrics_are_tagged_by_source(store: FileStore) -> None:
    sink = RecordingSink()
    await drive(
        scripted(source="feed", profile="high"),
        Runtime(clock=FakeClock(now_s=T0), metrics=sink, store=store),
    )
    timed_out = [r for r in sink.records if r[1] in (WAITS_TIMED_OUT, WAIT_SECONDS)]
    assert [r[3] for r in timed_out] == [
        {"trigger": "Scripted", "source": "feed", "profile": "high"}
    ] * 2


class BrokenHistory(FileStore):
    """A store whose history writes fail (disk full, an unreachable API server)."""

    async def append(self, record: Any) -> None:
        raise OSError(28, "No space left on device")


async def test_a_failing_history_write_never_loses_a_detection(tmp_path: Path) -> None:
    sink = RecordingSink()
    store = BrokenHistory(tmp_path / "store")
    trigger = scripted("miss", "hit", source="feed", end_from_trigger=True)
    event = await drive(trigger, Runtime(clock=FakeClock(now_s=T0), metrics=sink, store=store))
    assert type(event).__name__ == "TaskSuccessEvent"
    assert RECORD_FAILURES in sink.names()


async def test_a_user_action_records_the_wait_as_cancelled(store: FileStore) -> None:
    class Stuck(FakeClock):
        async def sleep(self, seconds: float) -> None:
            self.sleeps.append(seconds)
            await asyncio.Event().wait()  # the wait goes on until Airflow cancels it

    sink = RecordingSink()
    trigger = scripted("miss", source="feed", timeout=100.0)
    with use_runtime(Runtime(clock=Stuck(now_s=T0), metrics=sink, store=store)):
        task = asyncio.ensure_future(anext(trigger.run()))
        for _ in range(20):  # let it poke once and go to sleep
            await asyncio.sleep(0)
        task.cancel("user-action")  # what the triggerer does on clear / mark success
        with pytest.raises(asyncio.CancelledError):
            await task
        await trigger.on_kill()  # then Airflow calls on_kill
    [record] = await store.history("feed")
    assert (record.outcome, record.pokes, record.run_id) == (WaitOutcome.CANCELLED, 1, "r1")
    assert WAITS_CANCELLED in sink.names()


async def test_the_record_brackets_the_arrival_between_the_last_miss_and_the_hit(
    store: FileStore,
) -> None:
    clock = FakeClock(now_s=T0)
    trigger = scripted("miss", "error", "miss", "hit", source="feed", timeout=60.0)
    event = await drive(trigger, Runtime(clock=clock, metrics=RecordingSink(), store=store))
    # pokes at +0 miss, +5 error (backoff 1 s), +6 miss, then +10 hit: arrival in (6, 10]
    [record] = await store.history("feed")
    assert (record.last_miss_at, record.detected_at) == (T0 + 6, T0 + 10)
    assert event.payload["first_seen_at"] == T0 + 10


async def test_waits_of_a_source_that_end_together_write_their_records_together(
    tmp_path: Path,
) -> None:
    class Counting(FileStore):
        batches: ClassVar[list[int]] = []

        async def append_many(self, records: list[Any]) -> None:
            self.batches.append(len(records))
            await super().append_many(records)

    store = Counting(tmp_path / "store")
    triggers = [scripted("miss", "hit", run=f"r{i}", source="feed") for i in range(20)]
    with use_runtime(Runtime(clock=FakeClock(now_s=T0), metrics=RecordingSink(), store=store)):
        events = await asyncio.gather(*(anext(t.run()) for t in triggers))
    assert {e.payload["status"] for e in events} == {"success"}
    assert store.batches == [20]  # one write for the twenty, not twenty
    assert len(await store.history("feed")) == 20


@pytest.mark.parametrize(("earlier", "ends_at_once"), [("timeout", True), ("error", False)])
async def test_a_retry_after_a_timed_out_try_ends_at_once(
    store: FileStore, earlier: str, ends_at_once: bool
) -> None:
    # Airflow retries a timed-out sensor when its worker could not reach the api-server in
    # time to fail it; the new try must not wait a whole new window.
    clock = FakeClock(now_s=T0 + 100)
    first = scripted(source="feed", run="r1")
    await drive(first, Runtime(clock=FakeClock(now_s=T0), metrics=RecordingSink(), store=store))
    if earlier == "error":  # rewrite try 1 as an error: a retry then waits as usual
        [record] = await store.history("feed")
        await store.append(replace(record, outcome=WaitOutcome.ERROR, ended_at=record.ended_at + 1))
    second = scripted("miss", "hit", source="feed", run="r1", started_at=T0 + 100)
    second.task_instance.try_number = 2  # type: ignore[union-attr]
    event = await drive(second, Runtime(clock=clock, metrics=RecordingSink(), store=store))

    assert (event.payload["status"] == "timeout") is ends_at_once
    assert (event.payload["pokes"] == 0) is ends_at_once
    tries = [r.try_number for r in await store.history("feed")]
    assert tries == ([1] if ends_at_once else [1, 2])  # nothing new to count


async def test_a_chain_of_forced_retries_all_end_at_once(store: FileStore) -> None:
    # try 2 ended at once (recording nothing) and its worker could not fail it either: try 3
    # looks past it to try 1's timeout
    first = scripted(source="feed", run="r1")
    await drive(first, Runtime(clock=FakeClock(now_s=T0), metrics=RecordingSink(), store=store))
    third = scripted("miss", "hit", source="feed", run="r1", started_at=T0 + 200)
    third.task_instance.try_number = 3  # type: ignore[union-attr]
    clock = FakeClock(now_s=T0 + 200)
    event = await drive(third, Runtime(clock=clock, metrics=RecordingSink(), store=store))
    assert (event.payload["status"], event.payload["pokes"]) == ("timeout", 0)
