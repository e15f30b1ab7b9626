"""Degradation alerts: episodes, de-duplication keys, recovery, at-least-once delivery."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

import pytest

from tests.triggers.store.fakes import MemoryKV
from waitwise.triggers.breaker import BreakerSnapshot, BreakerState
from waitwise.triggers.report import summarize
from waitwise.triggers.report.alerts import (
    MAX_ATTEMPTS,
    STATE_KEY,
    AlertLedger,
    Message,
    State,
    evaluate,
    run,
)
from waitwise.triggers.report.summary import Report
from waitwise.triggers.store import WaitOutcome

from .test_report import DAY, NOW, day_waits, histories, timeout_of


def report_at(now: float, *, breaker_open: bool = False, healthy: bool = False) -> Report:
    found = histories()
    found["fin"] = day_waits("fin", "high", range(14), 60.0)  # steady
    if healthy:
        found["partner"] = day_waits("partner", "low", range(7), 3600.0)
    state = BreakerState.OPEN if breaker_open else BreakerState.CLOSED
    snapshot = BreakerSnapshot("partner", state, 0, opened_at=now - 5 if breaker_open else None)
    return summarize(found, now=now, breakers={"partner": snapshot}, targets={"crm_profile": 0.95})


def kinds(messages: list[Message]) -> list[tuple[str, str, str]]:
    return [(m.kind, m.condition, m.source) for m in messages]


def test_an_episode_alerts_once_and_recovers_once() -> None:
    first = evaluate(report_at(NOW, breaker_open=True), State())
    assert kinds(first.outbox) == [
        ("alert", "breaker", "partner"),
        ("alert", "success_rate", "partner"),
    ]
    assert first.outbox[0].key == f"breaker:partner:{NOW:.0f}"
    assert "recent success rate 71.4% under" in first.outbox[1].text
    again = evaluate(report_at(NOW + 3600, breaker_open=True), State(first.open))
    assert again.outbox == []  # still the same episodes: nothing new
    healed = evaluate(report_at(NOW + 7200, healthy=True), State(again.open))
    assert kinds(healed.outbox) == [
        ("recovery", "breaker", "partner"),
        ("recovery", "success_rate", "partner"),
    ]
    assert healed.outbox[0].key == f"breaker:partner:{NOW:.0f}:recovered"
    assert healed.open == {}


def test_a_wait_time_rise_and_clustered_timeouts_alert() -> None:
    slow = histories()
    slow["fin"] = day_waits("fin", "high", range(7), 250.0) + day_waits(
        "fin", "high", range(7, 14), 60.0
    )
    night = [
        replace(timeout_of(r), run_id=f"t{i}", scheduled_at=r.scheduled_at)
        for i, r in enumerate(day_waits("crm", "crm_profile", range(4), 60.0))
    ]
    slow["crm"] = night
    state = evaluate(summarize(slow, now=NOW, targets={"crm_profile": 0.95}), State())
    found = {(m.condition, m.source): m.text for m in state.outbox}
    assert "p95 wait 250 s, up 317% on 60 s" in found[("wait_time", "fin")]
    slower = dict(slow, fin=day_waits("fin", "high", range(7), 400.0))
    state = evaluate(summarize(slower, now=NOW, targets={"crm_profile": 0.95}), State())
    found = {(m.condition, m.source): m.text for m in state.outbox}
    assert "p95 wait 400 s over 300 s" in found[("wait_time", "fin")]  # HIGH's max_wait_s
    assert "4 of 4 timeouts at" in found[("timeouts", "crm")]


def test_a_source_missing_from_a_report_keeps_its_episode() -> None:
    first = evaluate(report_at(NOW, breaker_open=True), State())
    empty = summarize({}, now=NOW + DAY)
    assert evaluate(empty, State(first.open)).open == first.open


def test_the_state_round_trips_and_a_damaged_one_starts_afresh(
    caplog: pytest.LogCaptureFixture,
) -> None:
    state = evaluate(report_at(NOW, breaker_open=True), State())
    assert State.from_json(state.to_json()) == state
    kv = MemoryKV()
    kv.data[STATE_KEY] = "{not json"
    ledger = AlertLedger(kv)

    async def load() -> State:
        return await ledger.load()

    with caplog.at_level(logging.WARNING):
        assert asyncio.run(load()) == State()
    assert kv.data[f"{STATE_KEY}.corrupt"] == "{not json"
    assert "is damaged" in caplog.text


async def test_delivery_is_at_least_once_across_a_failure_and_a_restart() -> None:
    kv, sent, down = MemoryKV(), [], {"now": True}

    def deliver(message: Message) -> None:
        if down["now"]:
            raise OSError("endpoint down")
        sent.append(message.key)

    report = report_at(NOW, breaker_open=True)
    assert await run(report, AlertLedger(kv), deliver) == []  # every delivery failed
    queued = State.from_json(kv.data[STATE_KEY]).outbox
    assert [m.attempts for m in queued] == [1, 1]  # saved, with the failure counted
    down["now"] = False
    # a new process (restart) with the same stored state delivers the queue, once
    delivered = await run(report_at(NOW + 60, breaker_open=True), AlertLedger(kv), deliver)
    assert [m.key for m in delivered] == [m.key for m in queued]
    assert sent == [m.key for m in queued]
    assert await run(report_at(NOW + 120, breaker_open=True), AlertLedger(kv), deliver) == []
    assert State.from_json(kv.data[STATE_KEY]).outbox == []


async def test_a_message_that_cannot_be_delivered_holds_only_its_episode_then_is_given_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    kv, sent = MemoryKV(), []

    def deliver(message: Message) -> None:
        if message.condition == "breaker":
            raise ValueError("the notifier refuses this one")
        sent.append(message.key)

    for i in range(MAX_ATTEMPTS):
        await run(report_at(NOW + i, breaker_open=True), AlertLedger(kv), deliver)
        if i == 0:
            assert sent == [f"success_rate:partner:{NOW:.0f}"]  # the other episode went on
    # healed: the breaker episode's recovery waits behind its alert until it is given up
    with caplog.at_level(logging.ERROR):
        await run(report_at(NOW + 10, healthy=True), AlertLedger(kv), deliver)
    state = State.from_json(kv.data[STATE_KEY])
    assert [m.key for m in state.dead] == [f"breaker:partner:{NOW:.0f}"]
    assert state.dead[0].attempts == MAX_ATTEMPTS
    assert "Giving up alert breaker:partner" in caplog.text
    assert sent[-1] == f"success_rate:partner:{NOW:.0f}:recovered"


def test_no_data_is_no_recovery() -> None:
    """An open breaker that rejects every wait leaves no finished wait: health and wait time
    cannot be told, and their episodes stay open (no recovery is sent)."""
    first = evaluate(report_at(NOW, breaker_open=True), State())
    opened = {**first.open, "health:partner": NOW, "wait_time:partner": NOW}
    rejected = [
        replace(r, run_id=f"rej-{i}", outcome=WaitOutcome.BREAKER_OPEN)
        for i, r in enumerate(day_waits("partner", "low", range(3), 60.0))
    ]
    snapshot = BreakerSnapshot("partner", BreakerState.OPEN, 0, opened_at=NOW + 10 * DAY - 5)
    later = summarize({"partner": rejected}, now=NOW + 10 * DAY, breakers={"partner": snapshot})
    after = evaluate(later, State(opened))
    assert after.outbox == []
    assert after.open == opened


def test_a_wait_time_alert_needs_enough_successes() -> None:
    one = day_waits("fin", "high", range(1), 600.0)  # over HIGH's max_wait_s, but only one
    assert evaluate(summarize({"fin": one}, now=NOW), State()).outbox == []
    five = day_waits("fin", "high", range(5), 600.0)
    texts = [m.text for m in evaluate(summarize({"fin": five}, now=NOW), State()).outbox]
    assert any("p95 wait 600 s over 300 s" in t for t in texts)
