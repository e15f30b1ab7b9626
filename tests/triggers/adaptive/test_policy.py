"""Learned policies: configuration, cold start, binding to a source's knowledge."""

from __future__ import annotations

import json
import math
import random

import pytest

from waitwise.triggers.adaptive import Adaptive, Knowledge, Planned, RecentAverage
from waitwise.triggers.errors import PolicyConfigError
from waitwise.triggers.policy import (
    Constant,
    Exponential,
    PollState,
    policy_from_config,
    rebuildable,
)

from .helpers import DAY, T0, normal_days, polled


def test_configs_are_plain_json_and_rebuild() -> None:
    for policy in (
        Adaptive(),
        Adaptive(30.0, 0.9, 600.0, Exponential(5, 2, 60), 30.0, "Europe/Paris", 20),
        RecentAverage(10.0, 300.0, 5),
    ):
        config = json.loads(json.dumps(policy.to_config()))
        assert policy_from_config(config) == policy
        assert rebuildable(policy) == policy


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"target_latency_s": 0}, "Adaptive.target_latency_s must be >= 0.01, got 0"),
        (
            {"target_latency_s": 60, "max_interval_s": 30},
            "max_interval_s must be >= target_latency_s",
        ),
        ({"quantile": 1.0}, "Adaptive.quantile must be in (0, 1), got 1.0"),
        ({"timezone": "Nowhere/Land"}, "timezone must be an IANA name, got 'Nowhere/Land'"),
        ({"half_life_days": -1}, "half_life_days must be in (0, 1e5), got -1"),
        ({"fallback": 5}, "Adaptive.fallback must be an interval policy, got 5"),
    ],
)
def test_bad_adaptive_settings_name_the_parameter(config: dict[str, object], message: str) -> None:
    with pytest.raises(PolicyConfigError) as excinfo:
        Adaptive(**config)  # type: ignore[arg-type]
    assert message in str(excinfo.value)


def test_unbound_it_polls_like_its_fallback() -> None:
    rng = random.Random(0)
    assert Adaptive(45.0).next_interval(PollState(), rng) == 45.0
    assert Adaptive(fallback=Constant(7.0)).next_interval(PollState(), rng) == 7.0
    assert Adaptive(fallback=Constant(7.0)).bind(None, T0, T0, T0 + 60).policy == Constant(7.0)


def test_bound_to_history_it_plans_and_predicts() -> None:
    knowledge = Knowledge(polled(normal_days(100, 7200, 300, seed=1), 60))
    at = T0 + 100 * DAY
    bound = Adaptive(trust_from=0).bind(knowledge, at, at, at + 6 * 3600)
    assert isinstance(bound.policy, Planned)
    assert bound.plan is not None
    assert bound.model_version is not None
    assert bound.model_version.startswith("100-")
    assert bound.eta is not None
    assert bound.eta.low_s < 7200 < bound.eta.high_s
    assert abs(bound.eta.median_s - 7200) < 200
    assert 0.95 < bound.eta.arrives <= 1.0
    assert knowledge.model(Adaptive().learning) is knowledge.model(Adaptive().learning)  # cached


def test_without_a_scheduled_time_it_stays_cold() -> None:
    knowledge = Knowledge(polled(normal_days(100, 7200, 300), 60))
    assert Adaptive().bind(knowledge, None, T0, T0 + 60).model_version is None


def test_the_planned_policy_steps_to_the_next_offset() -> None:
    planned = Planned((100.0, 160.0, 400.0), 100.0, 900.0)
    rng = random.Random(0)
    assert planned.next_interval(PollState(1, 0.0), rng) == 60.0
    assert planned.next_interval(PollState(2, 60.0), rng) == 240.0
    assert planned.next_interval(PollState(3, 300.0), rng) == 900.0
    assert planned.max_interval == 900.0


def test_recent_average_is_the_exercises_rule() -> None:
    rule = RecentAverage(base_interval=30.0, max_interval_s=300.0, window=3)
    assert rule.bind(None, T0, T0, T0 + 60).policy == Constant(30.0)
    knowledge = Knowledge((), (9999.0, 400.0, 800.0, 1200.0))
    assert rule.bind(knowledge, T0, T0, T0).policy == Constant(200.0)  # mean 800 / 4
    assert rule.bind(Knowledge((), (10.0,)), T0, T0, T0).policy == Constant(30.0)
    assert rule.bind(Knowledge((), (1e5,)), T0, T0, T0).policy == Constant(300.0)


def test_recent_average_refuses_a_bad_window() -> None:
    with pytest.raises(PolicyConfigError, match="window must be an int >= 1, got 0"):
        RecentAverage(window=0)
    assert math.isfinite(RecentAverage().max_interval)


def test_a_learned_deadline_covers_the_quantile_with_a_margin_and_only_shortens() -> None:
    knowledge = Knowledge(polled(normal_days(200, 3600, 120, seed=2), 30))
    at = T0 + 200 * DAY
    policy = Adaptive(dynamic_timeout=True, timeout_quantile=0.99, timeout_margin=1.25)
    bound = policy.bind(knowledge, at, at, at + 6 * 3600)
    assert bound.closes_at is not None
    # Q(0.99) of N(3600, 120) is about 3880 s: the deadline is 1.25 times that.
    assert 1.25 * 3750 < bound.closes_at - at < 1.25 * 4050
    assert bound.plan is not None
    assert bound.plan.offsets[-1] == bound.closes_at - at  # the last poke at the deadline
    short = policy.bind(knowledge, at, at, at + 3000)  # the static deadline comes first
    assert short.closes_at is None
    late_start = policy.bind(knowledge, at, at + 5000, at + 6 * 3600)
    assert late_start.closes_at == at + 5000 + policy.min_timeout_s
    assert Adaptive().bind(knowledge, at, at, at + 6 * 3600).closes_at is None  # opt-in


def test_no_learned_deadline_when_the_history_cannot_say() -> None:
    rng = random.Random(3)
    days = [None if rng.random() < 0.3 else 3600.0 for _ in range(100)]
    knowledge = Knowledge(polled(days, 60))
    at = T0 + 100 * DAY
    bound = Adaptive(dynamic_timeout=True).bind(knowledge, at, at, at + 6 * 3600)
    assert bound.model_version is not None
    assert bound.closes_at is None  # 30% never arrive: no 99% quantile


def test_a_wait_plans_only_with_what_was_known_when_it_started() -> None:
    obs = polled(normal_days(40, 3600, 120, seed=5), 30)
    knowledge = Knowledge(obs)
    known = sorted(o.known_at for o in obs)
    before = Adaptive(trust_from=0).bind(knowledge, T0 + 40 * DAY, known[20], known[20] + 3600)
    assert before.model_version is not None
    assert before.model_version.startswith("20-")
    assert Adaptive(trust_from=0).bind(
        knowledge, T0 + 40 * DAY, known[-1] + 1, known[-1] + 3601
    ).model_version != (before.model_version)
