"""replay(): the trigger's scheduling without Airflow, checked by hand and by invariants."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from tests.triggers.store.fakes import make_record
from waitwise.triggers.adaptive import Adaptive, Arrival, replay
from waitwise.triggers.errors import PolicyConfigError
from waitwise.triggers.policy import Constant, FullJitter
from waitwise.triggers.store import WaitOutcome

DAY0 = datetime(2024, 3, 4, 6, tzinfo=UTC)


def daily(
    n: int, mean: float, sd: float, seed: int = 0, timeout: float = 6 * 3600
) -> list[Arrival]:
    rng = random.Random(seed)
    return [
        Arrival(DAY0 + timedelta(days=d), max(rng.gauss(mean, sd), 0.0), timeout) for d in range(n)
    ]


def test_a_constant_poll_by_hand() -> None:
    [result] = replay([Arrival(DAY0, 125.0, 600.0)], Constant(60.0))
    assert result.poke_offsets == (0.0, 60.0, 120.0, 180.0)
    assert (result.pokes, result.detected, result.latency_s) == (4, True, 55.0)
    assert result.model_version is None
    assert result.eta_s is None


def test_a_wait_that_never_sees_the_data_pokes_last_at_its_deadline() -> None:
    [result] = replay([Arrival(DAY0, None, 150.0, started_after_s=30.0)], Constant(60.0))
    assert result.poke_offsets == (30.0, 90.0, 150.0, 180.0)
    assert (result.detected, result.latency_s) == (False, None)


def test_an_arrival_after_the_deadline_is_not_detected() -> None:
    [result] = replay([Arrival(DAY0, 200.0, 150.0)], Constant(60.0))
    assert not result.detected
    assert result.poke_offsets[-1] == 150.0


def test_named_policies_and_seeds() -> None:
    waits = daily(5, 3600, 600)
    assert replay(waits, "constant", target_latency_s=30.0)[0].poke_offsets[1] == 30.0
    jitter = FullJitter(Constant(120.0))
    assert replay(waits, jitter, seed=1) == replay(waits, jitter, seed=1)
    assert replay(waits, jitter, seed=1) != replay(waits, jitter, seed=2)
    with pytest.raises(PolicyConfigError, match="'fastest'"):
        replay(waits, "fastest")


def test_cold_start_learns_as_it_goes() -> None:
    results = replay(daily(40, 3600, 300, seed=3), Adaptive(min_history=10, trust_from=0))
    assert [r.model_version is None for r in results[:10]] == [True] * 10
    assert all(r.model_version is not None for r in results[11:])
    assert results[-1].model_version is not None
    assert results[-1].model_version.startswith("39-")


def test_learned_waits_poke_less_than_fixed_60s_and_miss_nothing_it_detects() -> None:
    waits = daily(200, 7200, 600, seed=4)
    fixed = replay(waits, Constant(60.0))
    learned = replay(waits, Adaptive(60.0, max_interval_s=1800.0, trust_from=0))
    assert sum(r.pokes for r in learned[100:]) < 0.4 * sum(r.pokes for r in fixed[100:])
    assert all(b.detected for a, b in zip(fixed, learned, strict=True) if a.detected)


def test_history_as_records_is_used_as_stored() -> None:
    at = DAY0.timestamp()
    records = [
        make_record(
            i,
            scheduled_at=at - (30 - i) * 86_400.0,
            started_at=at - (30 - i) * 86_400.0,
            ended_at=at - (30 - i) * 86_400.0 + 70,
            first_seen_at=at - (30 - i) * 86_400.0 + 70,
            last_miss_at=at - (30 - i) * 86_400.0 + 60,
            outcome=WaitOutcome.SUCCESS,
        )
        for i in range(30)
    ]
    [result] = replay(
        [Arrival(DAY0, 65.0, 600.0)], Adaptive(5.0, max_interval_s=60.0), history=records
    )
    assert result.model_version is not None
    assert result.model_version.startswith("30-")
    assert result.eta_s is not None
    assert 60 <= result.eta_s <= 70
    assert result.detected
    assert result.latency_s is not None
    assert result.latency_s <= 5.0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"scheduled_at": datetime(2024, 1, 1)}, "scheduled_at"),  # noqa: DTZ001 - the point
        ({"arrived_after_s": math.nan}, "arrived_after_s"),
        ({"arrived_after_s": -1.0}, "arrived_after_s"),
        ({"arrived_after_s": 1e12}, "arrived_after_s"),
        ({"timeout_s": 0.0}, "timeout_s"),
        ({"started_after_s": "soon"}, "started_after_s"),
        ({"started_after_s": -1e12}, "started_after_s"),
    ],
)
def test_bad_arrivals_are_refused_naming_the_field(kwargs: dict[str, object], field: str) -> None:
    args: dict[str, object] = {"scheduled_at": DAY0, "arrived_after_s": 5.0, "timeout_s": 60.0}
    with pytest.raises(ValueError, match=field):
        Arrival(**{**args, **kwargs})  # type: ignore[arg-type]


def test_a_sensor_that_starts_before_the_scheduled_time_polls_from_its_start() -> None:
    [result] = replay([Arrival(DAY0, 30.0, 300.0, started_after_s=-100.0)], Constant(60.0))
    assert result.poke_offsets == (-100.0, -40.0, 20.0, 80.0)
    assert result.latency_s == 50.0
