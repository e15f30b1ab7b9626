from __future__ import annotations

import dataclasses
import json
import math
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.triggers.policy.strategies import policies
from waitwise.triggers.breaker import BreakerConfig
from waitwise.triggers.policy import (
    Constant,
    DecorrelatedJitter,
    Exponential,
    Linear,
    PolicyConfigError,
)
from waitwise.triggers.profiles import (
    HIGH,
    LOW,
    MEDIUM,
    PRESETS,
    AlertThresholds,
    OnBreakerOpen,
    OnDeadline,
    ReliabilityProfile,
    RetryStrategy,
    get_profile,
)

NAN, INF = math.nan, math.inf
BASE: dict[str, Any] = {"name": "p", "arrival_window_s": 300, "reliability": 0.9, "timeout_s": 600}


def profile(**changes: Any) -> ReliabilityProfile:
    return ReliabilityProfile(**{**BASE, "poll": Constant(30.0), **changes})


def alerts(**changes: Any) -> AlertThresholds:
    return AlertThresholds(**{"min_success_rate": 0.9, **changes})


RS, AT, RP = "RetryStrategy", "AlertThresholds", "ReliabilityProfile"
REOPEN, SKIP = OnDeadline.REOPEN, OnDeadline.SKIP
# (factory, owner named in the message, field, offending values, other arguments)
BAD_VALUES: list[tuple[Any, str, str, list[object], dict[str, Any]]] = [
    (RetryStrategy, RS, "probe_backoff", [5, None], {}),
    (RetryStrategy, RS, "reopen_backoff", ["60s"], {}),
    (RetryStrategy, RS, "max_probe_errors", [0, -1, True, 3.0, "5"], {}),
    (RetryStrategy, RS, "on_deadline", ["reopen", None], {}),
    (RetryStrategy, RS, "max_reopens", [-1, 2], {}),  # FAIL: must be 0
    (RetryStrategy, RS, "max_reopens", [0, 1.0, False], {"on_deadline": REOPEN}),
    (RetryStrategy, RS, "max_reopens", [1], {"on_deadline": SKIP}),
    (alerts, AT, "min_success_rate", [0, -0.5, 1.5, NAN, INF, True, "0.9"], {}),
    (alerts, AT, "window", [0, 20.0, None], {}),
    (alerts, AT, "max_wait_s", [0, -1.0, INF, NAN, False, "300"], {}),
    (profile, RP, "name", ["", "   ", None, 7], {}),
    (profile, "p", "arrival_window_s", [0, -5, NAN, INF, True, "300"], {}),
    (profile, "p", "reliability", [0, 1.001, NAN, -INF, False, "0.9"], {}),
    (profile, "p", "timeout_s", [0, -INF, NAN, INF, True, None], {}),
    (profile, "p", "poll", ["constant", None, 30.0], {}),
    (profile, "p", "on_breaker_open", ["skip", None], {}),
]
REJECTED = [
    pytest.param(build, {**other, field: v}, f"{owner}.{field}", v, id=f"{field}={v!r}")
    for build, owner, field, values, other in BAD_VALUES
    for v in values
]


@pytest.mark.parametrize(("build", "kw", "field", "value"), REJECTED)
def test_rejects_naming_field_and_value(
    build: Any, kw: dict[str, Any], field: str, value: Any
) -> None:
    with pytest.raises(PolicyConfigError, match=rf"^{re.escape(field)} .*{re.escape(repr(value))}"):
        build(**kw)


@pytest.mark.parametrize(
    ("preset", "facts"),
    [  # name, arrival window, reliability, timeout, poll policy, on deadline, re-opens
        (HIGH, ("high", 5 * 60, 0.999, 15 * 60, Linear(15, 15, 60), OnDeadline.FAIL, 0)),
        (MEDIUM, ("medium", 30 * 60, 0.95, 3600, Exponential(30, 2, 300), OnDeadline.FAIL, 0)),
        (LOW, ("low", 4 * 3600, 0.8, 4 * 3600, DecorrelatedJitter(60, 900), REOPEN, 2)),
    ],
)
def test_presets_match_the_scenario(preset: ReliabilityProfile, facts: tuple[object, ...]) -> None:
    p, r = preset, preset.retry
    got = (p.name, p.arrival_window_s, p.reliability, p.timeout_s, p.poll, r.on_deadline)
    assert (*got, r.max_reopens) == facts
    assert PRESETS[p.name] is get_profile(p.name) is preset


def test_low_preset_reopens_after_30_min_then_1_h_and_skips_when_open() -> None:
    assert LOW.retry.reopen_backoff == Exponential(30 * 60, 2.0, 2 * 3600)
    assert LOW.on_breaker_open is OnBreakerOpen.SKIP
    assert LOW.breaker == BreakerConfig(5, 0.6, 10, 5, 2 * 3600)
    assert list(PRESETS) == ["high", "medium", "low"]


@pytest.mark.parametrize("name", ["urgent", "HIGH", "", None, 3])
def test_get_profile_rejects_unknown_names(name: Any) -> None:
    expected = f"one of ['high', 'low', 'medium'], got {name!r}"
    with pytest.raises(PolicyConfigError, match=re.escape(expected)):
        get_profile(name)


def test_override_applies_changes_to_a_copy() -> None:
    changed = MEDIUM.override(timeout_s=7200, on_breaker_open=OnBreakerOpen.SKIP)
    assert changed == dataclasses.replace(
        MEDIUM, timeout_s=7200, on_breaker_open=OnBreakerOpen.SKIP
    )
    assert (MEDIUM.timeout_s, MEDIUM.on_breaker_open) == (3600, OnBreakerOpen.FAIL)
    assert HIGH.override() == HIGH
    custom = HIGH.override(name="custom")
    assert get_profile(custom) is custom


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"timeout_s": 60}, "high.timeout_s (60) must be >= arrival_window_s (300)"),
        ({"reliability": 1.5}, "high.reliability must be in (0, 1], got 1.5"),
        ({"poll": "linear"}, "high.poll must be an interval policy, got 'linear'"),
        ({"name": ""}, "ReliabilityProfile.name must be a name, got ''"),
        ({"timeout": 900, "polll": None}, "high: unknown profile field(s) ['polll', 'timeout']"),
        (
            {"poll": Constant(interval=3600.0)},
            "high.poll waits 3600s after its first poke, past timeout_s (900)",
        ),
        (
            {"alerts": AlertThresholds(0.9, max_wait_s=3600.0)},
            "high.alerts.max_wait_s (3600.0) is beyond the wait's last deadline (900s",
        ),
        ({"poll": Constant}, "high.poll must be an interval policy (an instance"),
    ],
)
def test_override_revalidates_and_rejects_unknown_fields(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(PolicyConfigError, match=f"^{re.escape(message)}"):
        HIGH.override(**changes)


@st.composite
def retry_strategies(draw: st.DrawFn) -> RetryStrategy:
    on_deadline = draw(st.sampled_from(OnDeadline))
    reopens = st.integers(1, 10) if on_deadline is REOPEN else st.just(0)
    return RetryStrategy(
        draw(policies), draw(st.integers(1, 100)), on_deadline, draw(reopens), draw(policies)
    )


@given(retry_strategies())
def test_retry_strategy_config_round_trips_through_json(strategy: RetryStrategy) -> None:
    assert RetryStrategy.from_config(json.loads(json.dumps(strategy.to_config()))) == strategy


def test_retry_strategy_to_config_is_plain_json() -> None:
    assert LOW.retry.to_config() == {
        "probe_backoff": {"kind": "exponential", "initial": 5.0, "factor": 2.0, "cap": 300.0},
        "max_probe_errors": 10,
        "on_deadline": "reopen",
        "max_reopens": 2,
        "reopen_backoff": {"kind": "exponential", "initial": 1800.0, "factor": 2.0, "cap": 7200.0},
    }


CONFIG = RetryStrategy().to_config()


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        ({**CONFIG, "on_deadline": "later"}, "'later' is not a valid OnDeadline"),
        ({**CONFIG, "max_probe_errors": 0}, "RetryStrategy.max_probe_errors must be an int >= 1"),
        ({**CONFIG, "reopen_backoff": {"kind": "nope"}}, "policy kind must be one of"),
        ({**CONFIG, "probe_backoff": None}, "policy config must be a mapping, got None"),
        ({k: v for k, v in CONFIG.items() if k != "max_reopens"}, ": 'max_reopens'"),
    ],
)
def test_retry_strategy_from_config_rejects(config: dict[str, Any], reason: str) -> None:
    with pytest.raises(
        PolicyConfigError, match=rf"^bad RetryStrategy config .*{re.escape(reason)}"
    ):
        RetryStrategy.from_config(config)


anything = st.one_of(
    st.floats(), st.integers(-(10**12), 10**12), st.booleans(), st.text(max_size=4), st.none()
)


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Draw from ``bad`` one time in six, so that both outcomes are common."""
    return st.integers(0, 5).flatmap(lambda n: bad if n == 0 else good)


durations = mostly(st.floats(0.01, 1e6) | st.integers(1, 10**6), anything)
profile_args = st.tuples(
    mostly(st.text(min_size=1, max_size=3), st.sampled_from(["", " \t", None, 7])),
    durations,
    mostly(st.floats(0, 1) | st.just(1), anything),
    durations,
    mostly(st.just(Constant(1.0)), st.sampled_from(["constant", None, 5.0])),
    retry_strategies(),
    st.none() | st.just(BreakerConfig()),
    mostly(st.sampled_from(OnBreakerOpen), st.sampled_from(["skip", None])),
    st.builds(AlertThresholds, st.floats(0.01, 1), st.integers(1, 100)),
)


def _valid(name: Any, window: Any, rate: Any, timeout: Any, poll: Any, *rest: Any) -> bool:
    """The documented rules, restated independently of the module."""
    numbers = all(type(v) in (int, float) for v in (window, rate, timeout))
    return (
        isinstance(name, str)
        and name.strip() != ""
        and numbers
        and 0 < window <= timeout < INF
        and 0 < rate <= 1
        and isinstance(poll, Constant)
        and poll.interval <= timeout  # the second poke can come by the deadline
        and isinstance(rest[2], OnBreakerOpen)
    )


@given(profile_args)
def test_profile_constructs_or_raises_policy_config_error(args: tuple[Any, ...]) -> None:
    try:
        outcome: object = ReliabilityProfile(*args)
    except PolicyConfigError as exc:  # any other exception type fails the test
        outcome = exc
    assert isinstance(outcome, ReliabilityProfile) is _valid(*args)


@pytest.mark.parametrize(
    "build",
    [lambda: profile(arrival_window_s=10**400), lambda: alerts(max_wait_s=10**400)],
    ids=["arrival_window_s", "max_wait_s"],
)
def test_huge_int_durations_raise_policy_config_error(build: Any) -> None:
    with pytest.raises(PolicyConfigError, match=r"must be a finite number > 0"):
        build()


@pytest.mark.parametrize(
    "changes", [{"retry": "x"}, {"breaker": 3}, {"alerts": None}, {"poll": Constant}]
)
def test_profile_rejects_parts_of_the_wrong_type(changes: dict[str, Any]) -> None:
    with pytest.raises(PolicyConfigError, match=re.escape(f"p.{next(iter(changes))} must be")):
        profile(**changes)


@pytest.mark.parametrize("config", [["probe_backoff"], None])
def test_retry_strategy_from_config_rejects_non_mappings(config: Any) -> None:
    with pytest.raises(PolicyConfigError, match="bad RetryStrategy config"):
        RetryStrategy.from_config(config)
