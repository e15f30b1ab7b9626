from __future__ import annotations

import hashlib
import itertools
import random
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.triggers.policy.strategies import airflows, attempts
from waitwise.triggers.policy import (
    AIRFLOW_MAX_DELAY,
    AirflowExponential,
    PolicyConfigError,
    PollState,
    intervals,
)


@pytest.mark.parametrize(
    ("poke_interval", "bases"),
    [
        (5, [2, 5, 10, 20, 40, 80, 160, 320]),
        (60, [30, 60, 120, 240, 480, 960, 1920, 3840]),
        (1, [1, 1, 2, 4, 8, 16, 32, 64]),
        (0, [1, 1, 1, 1, 1, 1, 1, 1]),
        (2.5, [1, 2, 5, 10, 20, 40, 80, 160]),
    ],
)
def test_min_backoff_matches_airflow_bases(poke_interval, bases):
    policy = AirflowExponential(poke_interval)
    assert [policy.min_backoff(attempt) for attempt in range(1, 9)] == bases


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (AirflowExponential(5), [3.0, 9.0, 14.0, 20.0, 46.0, 121.0, 303.0, 426.0]),
        (AirflowExponential(5, 30), [3.0, 9.0, 14.0, 20.0, 30.0, 30.0, 30.0, 30.0]),
        (AirflowExponential(0), [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]),
        (AirflowExponential(0, 0.5), [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]),
    ],
)
def test_exact_schedule_for_key_k(policy, expected):
    assert list(itertools.islice(intervals(policy, "k"), 8)) == expected


@pytest.mark.parametrize(
    ("policy", "attempt", "expected"),
    [
        (AirflowExponential(5), 2**200, AIRFLOW_MAX_DELAY),
        (AirflowExponential(5), 1100, AIRFLOW_MAX_DELAY),
        (AirflowExponential(5, 60), 60, 60.0),
        (AirflowExponential(1e300), 10, AIRFLOW_MAX_DELAY),
        (AirflowExponential(0), 2**200, 1.0),
    ],
)
def test_huge_attempts_saturate(policy, attempt, expected):
    assert policy.next_interval(PollState(attempt), random.Random(0)) == expected


@pytest.mark.parametrize(
    ("policy", "max_interval"),
    [
        (AirflowExponential(5), AIRFLOW_MAX_DELAY),
        (AirflowExponential(5, 60), 60.0),
        (AirflowExponential(5, 1e20), AIRFLOW_MAX_DELAY),
    ],
)
def test_max_interval(policy, max_interval):
    assert policy.max_interval == max_interval


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: AirflowExponential(-1),
            "AirflowExponential.poke_interval must be >= 0, got -1",
        ),
        (
            lambda: AirflowExponential("5"),  # type: ignore[arg-type]
            "AirflowExponential.poke_interval must be a number, got '5'",
        ),
        (
            lambda: AirflowExponential(5, 0),
            "AirflowExponential.max_wait must be >= 0.01, got 0",
        ),
    ],
)
def test_rejects_bad_parameters_naming_them(build, message):
    with pytest.raises(PolicyConfigError, match=f"^{re.escape(message)}$"):
        build()


@given(airflows, attempts, st.integers(0, 2**32))
def test_interval_is_base_plus_jitter_below_base(
    policy: AirflowExponential, attempt: int, seed: int
):
    interval = policy.next_interval(PollState(attempt), random.Random(seed))
    assert 0 < interval <= policy.max_interval
    assert policy.monotone is True


class _AirflowHashRandom(random.Random):
    """Draw the jitter with Airflow's own sha1 hash, to compare formulas value by value."""

    def __init__(self, sensor_key: str, attempt: int) -> None:
        super().__init__(0)
        self.hash_input = f"{sensor_key}#{attempt}".encode()

    def randrange(self, start, stop=None, step=1):
        digest = hashlib.sha1(self.hash_input, usedforsecurity=False).hexdigest()
        return int(digest, 16) % start


@pytest.mark.parametrize(
    ("poke_interval", "max_wait"), [(5, None), (5, 60), (0, None), (7.5, 1000)]
)
def test_same_intervals_as_airflows_sensor_given_its_hash(poke_interval, max_wait):
    from airflow.sdk.bases.sensor import BaseSensorOperator

    class Sensor(BaseSensorOperator):
        def poke(self, context):
            return False

    sensor = Sensor(
        task_id="task",
        poke_interval=poke_interval,
        max_wait=max_wait,
        exponential_backoff=True,
        timeout=AIRFLOW_MAX_DELAY,
    )
    policy = AirflowExponential(poke_interval, max_wait)
    # Airflow hashes f"{dag_id}#{task_id}#{started_at}#{poke_count}"; started_at is 0.0.
    key = f"{sensor.dag_id}#{sensor.task_id}#0.0"
    attempts = range(1, 16)
    ours = [policy.next_interval(PollState(n), _AirflowHashRandom(key, n)) for n in attempts]
    airflow = [sensor._get_next_poke_interval(0.0, lambda: 0.0, n) for n in attempts]
    assert ours == airflow
