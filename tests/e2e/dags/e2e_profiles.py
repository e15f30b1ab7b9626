"""DAGs for the profile, breaker and re-open end-to-end tests (wiring only)."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from waitwise.operators.breaker import BreakerOverrideOperator
from waitwise.operators.file import FileArrivalSensor
from waitwise.triggers.breaker import BreakerConfig
from waitwise.triggers.policy import Constant
from waitwise.triggers.profiles import OnDeadline, ReliabilityProfile, RetryStrategy

START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)

BREAKING = ReliabilityProfile(
    name="e2e_breaking",
    arrival_window_s=5.0,
    reliability=0.9,
    timeout_s=6.0,
    poll=Constant(interval=1.0),
    breaker=BreakerConfig(failure_threshold=2, cooldown_s=45.0),
)
PAIR = BREAKING.override(name="e2e_pair", breaker=BreakerConfig(failure_threshold=4))
REOPENING = ReliabilityProfile(
    name="e2e_reopening",
    arrival_window_s=4.0,
    reliability=0.8,
    timeout_s=4.0,
    poll=Constant(interval=1.0),
    retry=RetryStrategy(
        on_deadline=OnDeadline.REOPEN, max_reopens=2, reopen_backoff=Constant(interval=3.0)
    ),
    breaker=None,
)

with DAG("ww_breaker", schedule=None, start_date=START, catchup=False, max_active_runs=1):
    FileArrivalSensor(
        task_id="sense",
        filepath="{{ dag_run.conf['file'] }}",
        profile=BREAKING,
        source="e2e_feed",
        soft_fail=True,
    )

with DAG("ww_breaker_pair", schedule=None, start_date=START, catchup=False, max_active_runs=1):
    for i in range(4):
        FileArrivalSensor(
            task_id=f"sense{i}",
            filepath="never/{{ run_id }}.csv",
            profile=PAIR,
            source="pair_feed",
            soft_fail=True,
        )

with DAG("ww_reopen", schedule=None, start_date=START, catchup=False):
    FileArrivalSensor(
        task_id="sense",
        filepath="never/{{ run_id }}.csv",
        profile=REOPENING,
        source="reopen_feed",
        soft_fail=True,
    )

with DAG("ww_admin", schedule=None, start_date=START, catchup=False):
    BreakerOverrideOperator(
        task_id="override",
        source="e2e_admin_feed",
        action="{{ dag_run.conf['action'] }}",
        note="{{ dag_run.conf.get('note', '') }}",
    )

with DAG("ww_guarded", schedule=None, start_date=START, catchup=False):
    FileArrivalSensor(
        task_id="sense",
        filepath="{{ dag_run.conf['file'] }}",
        profile=BREAKING,
        source="e2e_admin_feed",
    )
