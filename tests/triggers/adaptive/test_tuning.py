"""Auto-tuning: the change log, the latency feedback, the deadline, the guard rails."""

from __future__ import annotations

import itertools
import json
import math
import random

import numpy as np
import pytest

from waitwise.triggers.adaptive import Adaptive, Knowledge, Planned
from waitwise.triggers.adaptive.tuning import (
    Change,
    Rules,
    Setting,
    in_effect,
    propose,
    resumed,
    reverted,
)
from waitwise.triggers.adaptive.turnbull import Floats
from waitwise.triggers.errors import PolicyConfigError
from waitwise.triggers.policy import policy_from_config

from .helpers import DAY, T0, normal_days, polled

RULES = Rules(
    target_latency_s=60.0,
    quantile=0.95,
    ceiling_s=1800.0,
    timeout_quantile=0.99,
    timeout_margin=1.25,
    step=0.25,
    every_s=DAY,
    min_history=30,
)


def arrays(widths: list[float], arrival: float = 3600.0) -> tuple[Floats, Floats, Floats]:
    """Observations arriving by ``arrival``, detected ``width`` after the last miss."""
    n = len(widths)
    by = np.full(n, arrival, dtype=np.float64)
    after = by - np.array(widths, dtype=np.float64)
    known = T0 + np.arange(n, dtype=np.float64) * DAY
    return after, by, known


def tune(at: float, interval: float, deadline: float | None = None) -> Change:
    return Change(at, "tune", Setting(interval, deadline), "test")


def test_a_change_round_trips_as_plain_json() -> None:
    change = Change(T0, "revert", Setting(600.0, 7200.0), "why")
    assert Change.from_json_dict(json.loads(json.dumps(change.to_json_dict()))) == change


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("at", math.nan, "change at must be epoch seconds"),
        ("at", "yesterday", "change at must be epoch seconds"),
        ("action", "undo", "change action must be one of"),
        ("max_interval_s", 0, "change max_interval_s must be seconds > 0"),
        ("deadline_s", -5, "change deadline_s must be seconds > 0 or null"),
        ("reason", None, "change reason must be a string"),
    ],
)
def test_a_damaged_change_is_refused_naming_the_field(
    field: str, value: object, message: str
) -> None:
    data = Change(T0, "tune", Setting(600.0), "why").to_json_dict() | {field: value}
    with pytest.raises(ValueError, match=message):
        Change.from_json_dict(data)


def test_only_the_first_tuning_of_a_slot_counts_and_only_changes_before_the_opening() -> None:
    log = [tune(T0 + 10, 900.0), tune(T0 + 20, 450.0), tune(T0 + DAY, 700.0)]
    assert in_effect(log, T0 + 30, DAY).setting == Setting(900.0)
    assert in_effect(log, T0 + DAY - 1, DAY).setting == Setting(900.0)
    assert in_effect(log, T0 + DAY, DAY).setting == Setting(700.0)
    assert in_effect(log, T0, DAY).setting is None  # before any change: untuned


def test_a_revert_restores_the_setting_before_and_holds_tuning_until_resumed() -> None:
    own = Setting(1800.0)
    log = [tune(T0, 1440.0), tune(T0 + DAY, 1152.0)]
    undo = reverted(log, T0 + DAY + 5, DAY, own)
    assert (undo.action, undo.setting) == ("revert", Setting(1440.0))
    log.append(undo)
    log.append(tune(T0 + 2 * DAY, 900.0))  # written by a triggerer that had not seen it
    effect = in_effect(log, T0 + 3 * DAY, DAY)
    assert (effect.setting, effect.held) == (Setting(1440.0), True)
    after, by, known = arrays([300.0] * 40)
    assert propose(after, by, known, log, RULES, T0 + 4 * DAY) is None  # held
    again = resumed(log, T0 + 4 * DAY, DAY)
    assert (again.action, again.setting) == ("resume", Setting(1440.0))
    assert not in_effect([*log, again], T0 + 4 * DAY, DAY).held


def test_reverting_the_first_tuning_restores_the_policys_own_setting() -> None:
    undo = reverted([tune(T0, 1440.0)], T0 + 1, DAY, Setting(1800.0))
    assert undo.setting == Setting(1800.0)
    with pytest.raises(ValueError, match="nothing was tuned"):
        reverted([], T0, DAY, Setting(1800.0))
    with pytest.raises(ValueError, match="not held"):
        resumed([tune(T0, 1440.0)], T0 + 1, DAY)


def test_late_detections_over_the_allowance_shrink_the_sparse_interval_one_step() -> None:
    after, by, known = arrays([30.0] * 80 + [400.0] * 20)  # 20% late, allowance 5%
    change = propose(after, by, known, [], RULES, T0 + 200 * DAY)
    assert change is not None
    assert change.setting.max_interval_s == pytest.approx(1800.0 / 1.25)
    assert "20.0% of 100 detections came over 60 s late, above the allowance 5.0%" in change.reason


def test_few_late_detections_grow_the_interval_up_to_the_ceiling_only() -> None:
    after, by, known = arrays([30.0] * 100)
    log = [tune(T0, 1000.0, 5000.0)]
    change = propose(after, by, known, log, RULES, T0 + 200 * DAY)
    assert change is not None
    assert change.setting.max_interval_s == pytest.approx(1250.0)
    at_ceiling = propose(after, by, known, [tune(T0, 1800.0, 5000.0)], RULES, T0 + 200 * DAY)
    assert at_ceiling is not None  # the deadline moves; the interval stays at its ceiling
    assert at_ceiling.setting.max_interval_s == 1800.0


def test_dense_gaps_stamped_a_few_ms_long_are_not_late() -> None:
    rng = random.Random(3)
    after, by, known = arrays([60.0 + rng.uniform(0.0, 0.02) for _ in range(200)])
    change = propose(after, by, known, [tune(T0, 1000.0)], RULES, T0 + 300 * DAY)
    assert change is not None
    assert change.setting.max_interval_s == pytest.approx(1250.0)  # grows: nothing was late


def test_the_interval_never_goes_under_the_latency_target() -> None:
    after, by, known = arrays([600.0] * 100)
    change = propose(after, by, known, [tune(T0, 70.0)], RULES, T0 + 200 * DAY)
    assert change is not None
    assert change.setting.max_interval_s == 60.0


def test_a_tuning_waits_its_turn_and_enough_history() -> None:
    after, by, known = arrays([400.0] * 100)
    assert propose(after, by, known, [tune(T0, 900.0)], RULES, T0 + DAY - 1) is None
    assert propose(after, by, known, [tune(T0, 900.0)], RULES, T0 + DAY) is not None
    a, b, k = arrays([400.0] * 29)
    assert propose(a, b, k, [], RULES, T0 + 200 * DAY) is None


def test_the_deadline_starts_loose_then_moves_a_bounded_step_towards_its_target() -> None:
    arrivals = normal_days(200, mean=7200.0, sd=600.0, seed=3)
    seen = polled(arrivals, 60.0, deadline=20 * 3600)
    after = np.array([o.after_s for o in seen])
    by = np.array([o.by_s for o in seen])
    known = np.array([o.known_at for o in seen])
    first = propose(after, by, known, [], RULES, T0 + 300 * DAY)
    assert first is not None
    assert first.setting.deadline_s is not None
    q99 = np.quantile(np.array(arrivals), 0.99)
    assert first.setting.deadline_s == pytest.approx(2 * 1.25 * q99, rel=0.05)
    log, deadlines = [first], [first.setting.deadline_s]
    for day in range(1, 8):
        change = propose(after, by, known, log, RULES, T0 + (300 + day) * DAY)
        if change is None:
            break
        log.append(change)
        assert change.setting.deadline_s is not None
        deadlines.append(change.setting.deadline_s)
    ratios = [b / a for a, b in itertools.pairwise(deadlines)]
    assert all(1 / 1.25 - 1e-9 <= r <= 1.25 + 1e-9 for r in ratios)
    assert deadlines[-1] == pytest.approx(1.25 * q99, rel=0.05)  # converged


def test_when_the_history_cannot_say_the_deadline_goes_back_to_the_static_one() -> None:
    n = 60
    after, by = np.full(n, 3600.0, dtype=np.float64), np.full(n, math.inf, dtype=np.float64)
    known = T0 + np.arange(n, dtype=np.float64) * DAY
    assert propose(after, by, known, [], RULES, T0 + 100 * DAY) is None
    change = propose(after, by, known, [tune(T0, 1800.0, 9000.0)], RULES, T0 + 100 * DAY)
    assert change is not None
    assert change.setting.deadline_s is None
    assert "deadline back to the static one" in change.reason


def test_guard_rails_hold_for_any_history() -> None:
    """Every tuned value moves by at most the step per change and stays within its bounds."""
    rng = random.Random(7)
    for _ in range(40):
        n = rng.randint(30, 300)
        by = np.array([rng.uniform(0, 20_000) for _ in range(n)])
        width = np.array([rng.choice([0.0, rng.uniform(1, 3000)]) for _ in range(n)])
        after = np.maximum(by - width, 0.0)
        by[rng.sample(range(n), n // 5)] = math.inf
        known = T0 + np.arange(n, dtype=np.float64) * 3600.0
        log: list[Change] = []
        for day in range(10):
            before = in_effect(log, math.inf, DAY).setting or Setting(RULES.ceiling_s)
            change = propose(after, by, known, log, RULES, T0 + (n + 24 * day) * 3600.0)
            if change is None:
                continue
            new = change.setting
            assert RULES.target_latency_s <= new.max_interval_s <= RULES.ceiling_s
            assert 1 / 1.25 - 1e-9 <= new.max_interval_s / before.max_interval_s <= 1.25 + 1e-9
            if before.deadline_s is not None and new.deadline_s is not None:
                assert 1 / 1.25 - 1e-9 <= new.deadline_s / before.deadline_s <= 1.25 + 1e-9
            log.append(change)


def test_adaptive_auto_tune_is_configured_rebuilt_and_checked() -> None:
    policy = Adaptive(auto_tune=True, tune_step=0.5, tune_every_s=3600.0)
    assert policy_from_config(json.loads(json.dumps(policy.to_config()))) == policy
    with pytest.raises(PolicyConfigError, match=r"Adaptive.auto_tune must be True or False"):
        Adaptive(auto_tune="yes")  # type: ignore[arg-type]
    with pytest.raises(PolicyConfigError, match=r"Adaptive.tune_step must be in \(0, 1\], got 2"):
        Adaptive(tune_step=2)
    with pytest.raises(PolicyConfigError, match=r"Adaptive.tune_every_s must be >= 60"):
        Adaptive(tune_every_s=1)
    # a row written before auto-tuning existed rebuilds untuned
    old = {k: v for k, v in Adaptive().to_config().items() if not k.startswith(("auto", "tune"))}
    assert policy_from_config(old) == Adaptive()


def _knowledge(changes: tuple[Change, ...]) -> Knowledge:
    arrivals = normal_days(120, mean=7200.0, sd=900.0, seed=1)
    knowledge = Knowledge(polled(arrivals, 60.0, start=T0 - 130 * DAY, deadline=12 * 3600))
    knowledge.changes = changes
    return knowledge


def test_a_bound_wait_plans_with_the_tuned_setting_in_force_when_it_opened() -> None:
    policy = Adaptive(max_interval_s=1800.0, auto_tune=True)
    opens, closes = T0, T0 + 12 * 3600
    tuned = _knowledge((tune(T0 - DAY, 300.0, 3 * 3600.0),))
    bound = policy.bind(tuned, T0, opens, closes)
    assert isinstance(bound.policy, Planned)
    assert bound.policy.tail == 300.0
    assert bound.policy.max_interval <= 300.0 + 1e-6
    assert bound.closes_at == T0 + 3 * 3600.0
    untuned = policy.bind(_knowledge(()), T0, opens, closes)
    assert untuned.closes_at is None
    later = policy.bind(_knowledge((tune(T0 + 1, 300.0, 3 * 3600.0),)), T0, opens, closes)
    assert (later.closes_at, later.plan) == (untuned.closes_at, untuned.plan)  # restart-safe
    off = Adaptive(max_interval_s=1800.0).bind(tuned, T0, opens, closes)
    assert (off.closes_at, off.plan) == (untuned.closes_at, untuned.plan)  # opt-in


def test_a_tuned_deadline_keeps_the_minimum_timeout_after_the_start() -> None:
    policy = Adaptive(auto_tune=True, min_timeout_s=600.0)
    bound = policy.bind(_knowledge((tune(T0 - DAY, 300.0, 100.0),)), T0, T0 + 60, T0 + 12 * 3600)
    assert bound.closes_at == T0 + 60 + 600.0
