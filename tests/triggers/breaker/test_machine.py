from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from waitwise.triggers.breaker import (
    BreakerClosed,
    BreakerConfig,
    BreakerConfigError,
    BreakerEvent,
    BreakerForced,
    BreakerHalfOpened,
    BreakerOpened,
    BreakerProbeExpired,
    BreakerRejected,
    BreakerSnapshot,
    BreakerSnapshotError,
    BreakerState,
    Verdict,
    decide,
    force,
    format_utc,
    record,
)

SRC = "finance"
T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z
CFG = BreakerConfig(failure_threshold=3, cooldown_s=60.0)
OPENED = "3 consecutive failed waits (limit 3)"
FAIL3 = [("fail", T0), ("fail", T0 + 1), ("fail", T0 + 2)]  # opens at T0 + 2
S = BreakerState


def run(
    script: list[tuple[Any, ...]], config: BreakerConfig = CFG
) -> tuple[BreakerSnapshot, list[BreakerEvent], list[Verdict]]:
    """Drive the pure functions through a script of (op, [arg], now) steps."""
    snap, events, verdicts = BreakerSnapshot(SRC), list[BreakerEvent](), []
    for op, *args, now in script:
        if op == "decide":
            decision = decide(snap, config, now)
            snap, new = decision.snapshot, list(decision.events)
            verdicts.append(decision.verdict)
        elif op == "force":
            snap, new = force(snap, args[0], now)
        else:
            snap, new = record(snap, config, op == "ok", now)
        events.extend(new)
    return snap, events, verdicts


HALF_OPENED = BreakerHalfOpened(SRC, T0 + 62, opened_at=T0 + 2)
IN_FLIGHT = "1 probing wait(s) in flight since 2023-11-14T22:14:22Z"

TRANSITIONS = {
    "threshold opens": (FAIL3, S.OPEN, [BreakerOpened(SRC, T0 + 2, 3, OPENED)], []),
    "success resets the count": (
        [("fail", T0), ("fail", T0 + 1), ("ok", T0 + 2), ("fail", T0 + 3)],
        S.CLOSED,
        [],
        [],
    ),
    "closed allows": (
        [("fail", T0), ("decide", T0 + 1)],
        S.CLOSED,
        [],
        [Verdict.ALLOW],
    ),
    "open rejects until the cooldown, then probes": (
        [*FAIL3, ("decide", T0 + 61.9), ("decide", T0 + 62)],
        S.HALF_OPEN,
        [
            BreakerOpened(SRC, T0 + 2, 3, OPENED),
            BreakerRejected(SRC, T0 + 61.9, OPENED, half_open_at=T0 + 62),
            HALF_OPENED,
        ],
        [Verdict.REJECT, Verdict.PROBE],
    ),
    "probe success closes": (
        [*FAIL3, ("decide", T0 + 62), ("ok", T0 + 70), ("decide", T0 + 71)],
        S.CLOSED,
        [
            BreakerOpened(SRC, T0 + 2, 3, OPENED),
            HALF_OPENED,
            BreakerClosed(SRC, T0 + 70, "a half-open probing wait succeeded"),
        ],
        [Verdict.PROBE, Verdict.ALLOW],
    ),
    "probe failure re-opens with a new cooldown": (
        [*FAIL3, ("decide", T0 + 62), ("fail", T0 + 70), ("decide", T0 + 100)],
        S.OPEN,
        [
            BreakerOpened(SRC, T0 + 2, 3, OPENED),
            HALF_OPENED,
            BreakerOpened(SRC, T0 + 70, 4, "the half-open probing wait failed"),
            BreakerRejected(SRC, T0 + 100, "the half-open probing wait failed", T0 + 130),
        ],
        [Verdict.PROBE, Verdict.REJECT],
    ),
    "one probe at a time": (
        [*FAIL3, ("decide", T0 + 62), ("decide", T0 + 63)],
        S.HALF_OPEN,
        [
            BreakerOpened(SRC, T0 + 2, 3, OPENED),
            HALF_OPENED,
            BreakerRejected(SRC, T0 + 63, IN_FLIGHT, half_open_at=T0 + 122),
        ],
        [Verdict.PROBE, Verdict.REJECT],
    ),
    "an unreported probe expires after cooldown_s": (
        [*FAIL3, ("decide", T0 + 62), ("decide", T0 + 122), ("decide", T0 + 123)],
        S.HALF_OPEN,
        [
            BreakerOpened(SRC, T0 + 2, 3, OPENED),
            HALF_OPENED,
            BreakerProbeExpired(SRC, T0 + 122, probe_started_at=T0 + 62, probes_dropped=1),
            BreakerRejected(
                SRC,
                T0 + 123,
                "1 probing wait(s) in flight since 2023-11-14T22:15:22Z",
                half_open_at=T0 + 182,
            ),
        ],
        [Verdict.PROBE, Verdict.PROBE, Verdict.REJECT],
    ),
    "late result while open changes nothing": (
        [*FAIL3, ("ok", T0 + 5)],
        S.OPEN,
        [BreakerOpened(SRC, T0 + 2, 3, OPENED)],
        [],
    ),
    "forced open rejects with no half-open time": (
        [("force", S.FORCED_OPEN, T0), ("decide", T0 + 1000)],
        S.FORCED_OPEN,
        [
            BreakerForced(SRC, T0, S.CLOSED, S.FORCED_OPEN, note=""),
            BreakerRejected(SRC, T0 + 1000, "forced open by an operator", None),
        ],
        [Verdict.REJECT],
    ),
    "forced closed never trips": (
        [("force", S.FORCED_CLOSED, T0), *FAIL3, ("fail", T0 + 3), ("decide", T0 + 4)],
        S.FORCED_CLOSED,
        [BreakerForced(SRC, T0, S.CLOSED, S.FORCED_CLOSED, note="")],
        [Verdict.ALLOW],
    ),
    "reset closes an open breaker": (
        [*FAIL3, ("force", "reset", T0 + 3), ("fail", T0 + 4), ("decide", T0 + 5)],
        S.CLOSED,
        [
            BreakerOpened(SRC, T0 + 2, 3, OPENED),
            BreakerForced(SRC, T0 + 3, S.OPEN, S.CLOSED, note=""),
        ],
        [Verdict.ALLOW],
    ),
}


@pytest.mark.parametrize(
    ("script", "state", "events", "verdicts"),
    TRANSITIONS.values(),
    ids=TRANSITIONS.keys(),
)
def test_transition_table(script, state, events, verdicts):
    snap, got_events, got_verdicts = run(script)
    assert (snap.state, got_events, got_verdicts) == (state, events, verdicts)


RATE = BreakerConfig(failure_threshold=100, failure_rate=0.5, window=4, min_calls=4)


@pytest.mark.parametrize(
    ("outcomes", "events"),
    [
        ("fff", []),  # below min_calls
        (
            "ofof",
            [BreakerOpened(SRC, T0 + 3, 1, "50% of the last 4 waits failed (limit 50%)")],
        ),
        ("ooof", []),  # 25% < 50%
        ("ffooo", []),  # the window slides: the last 4 hold one failure at most
    ],
)
def test_failure_rate_rule(outcomes, events):
    script = [("ok" if c == "o" else "fail", T0 + i) for i, c in enumerate(outcomes)]
    assert run(script, RATE)[1] == events


def test_window_keeps_the_newest_outcomes():
    snap, _, _ = run(
        [
            ("ok", T0),
            ("fail", T0 + 1),
            ("ok", T0 + 2),
            ("fail", T0 + 3),
            ("ok", T0 + 4),
        ],
        RATE,
    )
    assert snap.outcomes == (False, True, False, True)


def test_probe_slots_up_to_half_open_max_probes():
    config = replace(CFG, half_open_max_probes=2)
    script = [*FAIL3, ("decide", T0 + 62), ("decide", T0 + 63), ("decide", T0 + 64)]
    snap, _, verdicts = run(script, config)
    assert verdicts == [Verdict.PROBE, Verdict.PROBE, Verdict.REJECT]
    assert (snap.half_open_probes_in_flight, snap.half_open_started_at) == (2, T0 + 63)


def test_probe_timeout_overrides_the_cooldown():
    config = replace(CFG, probe_timeout_s=10.0)
    _, events, verdicts = run([*FAIL3, ("decide", T0 + 62), ("decide", T0 + 72)], config)
    assert (events[-1], verdicts) == (
        BreakerProbeExpired(SRC, T0 + 72, T0 + 62, 1),
        [Verdict.PROBE, Verdict.PROBE],
    )


def test_closing_clears_window_and_counters():
    snap, _, _ = run([*FAIL3, ("decide", T0 + 62), ("ok", T0 + 70)])
    assert snap == BreakerSnapshot(SRC, reason="a half-open probing wait succeeded")


@pytest.mark.parametrize(
    ("script", "now", "message"),
    [
        (
            FAIL3,
            T0 + 10,
            f"circuit breaker for source 'finance' is open: {OPENED}; "
            "it will half-open at 2023-11-14T22:14:22Z",
        ),
        (
            [*FAIL3, ("decide", T0 + 62)],
            T0 + 63,
            f"circuit breaker for source 'finance' is half-open: {IN_FLIGHT}; "
            "the next probe is allowed at 2023-11-14T22:15:22Z",
        ),
        (
            [("force", S.FORCED_OPEN, T0)],
            T0 + 1,
            "circuit breaker for source 'finance' is forced-open: forced open by an "
            "operator; it stays open until an operator resets it",
        ),
    ],
)
def test_rejection_message_names_source_reason_and_half_open_time(script, now, message):
    decision = decide(run(script)[0], CFG, now)
    assert (decision.allowed, decision.message) == (False, message)


def test_force_keeps_version_and_records_the_note():
    snap = BreakerSnapshot(SRC, version=7)
    new, events = force(snap, S.FORCED_OPEN, T0, note="ticket 42")
    assert (new.version, new.reason, new.opened_at) == (7, "ticket 42", T0)
    assert events == [BreakerForced(SRC, T0, S.CLOSED, S.FORCED_OPEN, "ticket 42")]


@pytest.mark.parametrize("target", [S.OPEN, S.HALF_OPEN, S.CLOSED, "open"])
def test_force_rejects_other_targets(target):
    with pytest.raises(BreakerConfigError, match="target must be"):
        force(BreakerSnapshot(SRC), target, T0)


@pytest.mark.parametrize("now", [math.nan, math.inf, "1", None, True])
def test_now_must_be_finite_seconds(now):
    with pytest.raises(ValueError, match="now must be finite epoch seconds"):
        decide(BreakerSnapshot(SRC), CFG, now)


def test_format_utc_survives_out_of_range_times():
    assert (format_utc(T0), format_utc(1e300)) == (
        "2023-11-14T22:13:20Z",
        "epoch 1e+300",
    )


# --- config validation -------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"failure_threshold": 0}, "failure_threshold must be an int >= 1, got 0"),
        (
            {"failure_threshold": True},
            "failure_threshold must be an int >= 1, got True",
        ),
        ({"window": "5"}, "window must be an int >= 1, got '5'"),
        (
            {"half_open_max_probes": 1.0},
            "half_open_max_probes must be an int >= 1, got 1.0",
        ),
        ({"window": 5}, "min_calls must be <= window (5), got 10"),
        ({"failure_rate": 0.0}, "failure_rate must be None or in (0, 1], got 0.0"),
        ({"failure_rate": 1.01}, "failure_rate must be None or in (0, 1], got 1.01"),
        ({"failure_rate": math.nan}, "failure_rate must be None or in (0, 1], got nan"),
        ({"cooldown_s": 0}, "cooldown_s must be finite seconds > 0, got 0"),
        ({"cooldown_s": math.inf}, "cooldown_s must be finite seconds > 0, got inf"),
        ({"cooldown_s": None}, "cooldown_s must be finite seconds > 0, got None"),
        (
            {"probe_timeout_s": -1},
            "probe_timeout_s must be None or finite seconds > 0, got -1",
        ),
    ],
)
def test_config_errors_name_parameter_and_value(kwargs, message):
    with pytest.raises(BreakerConfigError) as excinfo:
        BreakerConfig(**kwargs)
    assert (str(excinfo.value), isinstance(excinfo.value, ValueError)) == (
        message,
        True,
    )


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"cooldown": 5}, "unknown breaker config parameter(s): ['cooldown']"),
        ([("cooldown_s", 5)], "breaker config must be a mapping: [('cooldown_s', 5)]"),
    ],
)
def test_from_config_rejects_unknown_input(config, message):
    with pytest.raises(BreakerConfigError) as excinfo:
        BreakerConfig.from_config(config)
    assert str(excinfo.value) == message


@st.composite
def configs(draw: st.DrawFn) -> BreakerConfig:
    window = draw(st.integers(1, 1000))
    seconds = st.floats(1e-3, 1e7, allow_nan=False)
    return BreakerConfig(
        failure_threshold=draw(st.integers(1, 10**6)),
        failure_rate=draw(st.none() | st.floats(1e-6, 1.0)),
        window=window,
        min_calls=draw(st.integers(1, window)),
        cooldown_s=draw(seconds | st.integers(1, 10**6)),
        half_open_max_probes=draw(st.integers(1, 100)),
        probe_timeout_s=draw(st.none() | seconds),
    )


@given(configs())
def test_config_round_trips_through_json(config):
    assert BreakerConfig.from_config(json.loads(json.dumps(config.to_config()))) == config


@given(
    st.sampled_from(["failure_threshold", "window", "half_open_max_probes"]),
    st.integers(max_value=0) | st.booleans() | st.floats() | st.text(),
)
def test_counts_below_one_or_not_int_are_rejected(name, value):
    with pytest.raises(BreakerConfigError, match=f"^{name} must be an int >= 1"):
        BreakerConfig(**{name: value, "min_calls": 1})


@given(st.floats(max_value=0.0) | st.sampled_from([math.inf, -math.inf, math.nan]))
def test_cooldown_must_be_positive_and_finite(value):
    with pytest.raises(BreakerConfigError, match=r"^cooldown_s must be finite seconds > 0"):
        BreakerConfig(cooldown_s=value)


@given(st.floats().filter(lambda r: not 0 < r <= 1))
def test_failure_rate_outside_unit_interval_is_rejected(rate):
    with pytest.raises(BreakerConfigError, match=r"^failure_rate must be None or in"):
        BreakerConfig(failure_rate=rate)


# --- snapshot round trip -----------------------------------------------------

times = st.floats(0, 4e9, allow_nan=False)


@st.composite
def snapshots(draw: st.DrawFn) -> BreakerSnapshot:
    state = draw(st.sampled_from(BreakerState))
    in_flight = draw(st.integers(0, 5))
    needs_open = state is BreakerState.OPEN
    return BreakerSnapshot(
        source=draw(st.text(min_size=1)),
        state=state,
        consecutive_failures=draw(st.integers(0, 10**6)),
        outcomes=tuple(draw(st.lists(st.booleans(), max_size=50))),
        opened_at=draw(times if needs_open else st.none() | times),
        half_open_probes_in_flight=in_flight,
        half_open_started_at=draw(times if in_flight else st.none() | times),
        reason=draw(st.text()),
        version=draw(st.integers(0, 2**53)),
    )


@given(snapshots())
def test_snapshot_round_trips_through_json(snap):
    text = json.dumps(snap.to_json_dict())
    assert BreakerSnapshot.from_json_dict(json.loads(text)) == snap


GOOD = BreakerSnapshot(SRC, S.OPEN, 3, (False,) * 3, opened_at=T0, reason=OPENED).to_json_dict()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([1, 2], "breaker snapshot must be an object: [1, 2]"),
        ({**GOOD, "schema": 3}, "unsupported schema 3"),
        (
            {k: v for k, v in GOOD.items() if k != "reason"},
            "snapshot fields differ from schema: ['reason']",
        ),
        ({**GOOD, "extra": 1}, "snapshot fields differ from schema: ['extra']"),
        ({**GOOD, "state": "ajar"}, "unknown state 'ajar'"),
        ({**GOOD, "outcomes": "fff"}, "outcomes must be a tuple of bools, got 'fff'"),
        ({**GOOD, "outcomes": [0, 1]}, "outcomes must be a tuple of bools, got (0, 1)"),
        ({**GOOD, "version": -1}, "version must be an int >= 0, got -1"),
        ({**GOOD, "version": True}, "version must be an int >= 0, got True"),
        ({**GOOD, "source": ""}, "source must be a non-empty str, got ''"),
        ({**GOOD, "opened_at": None}, "opened_at must be epoch seconds, got None"),
        ({**GOOD, "opened_at": "x"}, "opened_at must be epoch seconds, got 'x'"),
        (
            {**GOOD, "half_open_probes_in_flight": 1},
            "half_open_started_at must be epoch seconds, got None",
        ),
        ({**GOOD, "reason": 5}, "reason must be a str, got 5"),
    ],
)
def test_damaged_snapshot_is_rejected_with_a_clear_error(data, message):
    with pytest.raises(BreakerSnapshotError) as excinfo:
        BreakerSnapshot.from_json_dict(data)
    assert str(excinfo.value) == message


def test_allowed_decisions_say_so():
    assert decide(BreakerSnapshot(SRC), CFG, T0).message == (
        "circuit breaker for source 'finance' is closed and allows the wait"
    )


def test_a_wait_two_triggerers_ran_counts_once() -> None:
    config = BreakerConfig(failure_threshold=2)
    first, _ = record(BreakerSnapshot("s"), config, False, T0, wait="a")
    again, events = record(first, config, False, T0 + 1, wait="a")  # the takeover's report
    assert (again, events) == (first, [])
    opened, events = record(again, config, False, T0 + 2, wait="b")
    assert opened.state is BreakerState.OPEN
    assert opened.counted == ("a", "b")


def test_a_snapshot_written_by_0_1_0_is_read_as_it_is() -> None:
    old = {k: v for k, v in BreakerSnapshot("s").to_json_dict().items() if k != "counted"}
    assert BreakerSnapshot.from_json_dict({**old, "schema": 1}) == BreakerSnapshot("s")
