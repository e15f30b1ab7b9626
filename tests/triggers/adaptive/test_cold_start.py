"""The cold start earns its savings: a model plans once it foresaw recent arrivals, and the
share of arrivals it may leave to sparse polling grows with the evidence."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from waitwise.triggers.adaptive import Adaptive, Arrival, Knowledge, Planned, Replayed, replay
from waitwise.triggers.adaptive.knowledge import TRUST_CHECKS, TRUSTED_FROM
from waitwise.triggers.errors import PolicyConfigError
from waitwise.triggers.policy import Constant, policy_from_config

from .helpers import DAY, T0, polled

TAIL = 0.8 * 0.05  # SAFETY x (1 - quantile), the default Adaptive's
LEARNING = Adaptive().learning


def steady(n: int) -> list[float | None]:
    return [7200.0 + 30.0 * (d % 3) for d in range(n)]


def test_too_few_arrivals_to_check_is_not_trust() -> None:
    knowledge = Knowledge(polled(steady(10 + TRUST_CHECKS // 2 - 1), 60))
    assert not knowledge.trusted(LEARNING, None, TAIL)
    knowledge = Knowledge(polled(steady(10 + TRUST_CHECKS // 2), 60))
    assert knowledge.trusted(LEARNING, None, TAIL)


def test_arrivals_the_model_did_not_foresee_withhold_trust_until_it_has_seen_enough() -> None:
    moved = steady(60) + [3 * 3600.0 + 30.0 * (d % 3) for d in range(5)]  # 1 h later, lately
    knowledge = Knowledge(polled(moved, 60))
    assert not knowledge.trusted(LEARNING, None, TAIL)
    at = T0 + 65 * DAY
    cold = Adaptive().bind(knowledge, at, at, at + 6 * 3600)
    assert (cold.policy, cold.model_version) == (Constant(60.0), None)
    assert Adaptive(trust_from=0).bind(knowledge, at, at, at + 6 * 3600).model_version
    assert knowledge.trusted(LEARNING, None, TAIL, trust_from=len(knowledge))  # history enough


def test_trust_is_decided_on_what_was_known_when_the_wait_started() -> None:
    obs = polled(steady(60) + [3 * 3600.0] * 5, 60)
    knowledge = Knowledge(obs)
    before_the_move = sorted(o.known_at for o in obs)[60]
    assert knowledge.trusted(LEARNING, before_the_move, TAIL)
    assert not knowledge.trusted(LEARNING, None, TAIL)


def test_the_lateness_budget_grows_with_the_evidence() -> None:
    knowledge = Knowledge(polled(steady(100), 60))
    at = T0 + 100 * DAY
    dense: list[int] = []
    for trust_from in (10_000, 300, 100, 0):
        bound = Adaptive(trust_from=trust_from).bind(knowledge, at, at, at + 6 * 3600)
        assert isinstance(bound.policy, Planned)
        dense.append(len(bound.policy.offsets))
    assert dense == sorted(dense, reverse=True)  # less evidence, more pokes
    assert dense[0] > dense[-1]


def test_trust_from_is_configured_rebuilt_and_checked() -> None:
    policy = Adaptive(trust_from=50)
    assert policy_from_config(json.loads(json.dumps(policy.to_config()))) == policy
    assert Adaptive().trust_from == TRUSTED_FROM
    old = {k: v for k, v in Adaptive().to_config().items() if k != "trust_from"}
    assert policy_from_config(old) == Adaptive()  # rows written before it rebuild
    with pytest.raises(PolicyConfigError, match=r"Adaptive.trust_from must be an int >= 0, got -1"):
        Adaptive(trust_from=-1)


def test_a_cold_start_is_no_later_than_fixed_polling_on_unseen_tails() -> None:
    """Normal arrivals, sd 15 min, 5% 1-3 h late: learning from nothing, the first 150 waits'
    p95 latency stays within 10% of fixed 60 s, with fewer pokes."""
    rng = random.Random(11)
    day0 = datetime(2024, 3, 4, 6, tzinfo=UTC)
    waits = []
    for d in range(150):
        late = rng.random() < 0.05
        arrival = 7200 + (rng.uniform(3600, 10800) if late else rng.gauss(0, 900))
        waits.append(Arrival(day0 + timedelta(days=d), arrival, 8 * 3600))
    fixed = replay(waits, Constant(60.0))
    learned = replay(waits, "adaptive", learn=True, target_latency_s=60.0, refit_every=5)

    def p95(results: list[Replayed]) -> float:
        found = sorted(r.latency_s for r in results if r.latency_s is not None)
        return found[math.ceil(0.95 * len(found)) - 1]

    assert p95(learned) <= 1.1 * p95(fixed)
    assert sum(r.pokes for r in learned) < sum(r.pokes for r in fixed)
    assert all(b.detected for a, b in zip(fixed, learned, strict=True) if a.detected)
