"""DAGs for the object-store end-to-end tests (wiring only): s3:// URLs on a moto server.

The test module defines the connections ``moto_s3`` (the server) and ``dead_s3`` (a closed
port) through ``AIRFLOW_CONN_*`` and creates the bucket ``landing``.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from waitwise.operators.file import FileArrivalSensor
from waitwise.triggers.breaker import BreakerConfig
from waitwise.triggers.policy import Constant
from waitwise.triggers.profiles import ReliabilityProfile, RetryStrategy

START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)

FRAGILE = ReliabilityProfile(
    name="e2e_object_fragile",
    arrival_window_s=30.0,
    reliability=0.9,
    timeout_s=60.0,
    poll=Constant(interval=1.0),
    retry=RetryStrategy(probe_backoff=Constant(interval=2.0), max_probe_errors=2),
    breaker=BreakerConfig(failure_threshold=1, cooldown_s=300.0),
)

with DAG("wwo_arrival", schedule=None, start_date=START, catchup=False):
    FileArrivalSensor(
        task_id="sense",
        filepath="s3://landing/in/{{ dag_run.conf['day'] }}/*.csv",
        conn_id="moto_s3",
        poll=Constant(interval=1.0),
        timeout=120,
        source="e2e_object_arrival",
    )

with DAG("wwo_soft_fail", schedule=None, start_date=START, catchup=False):
    FileArrivalSensor(
        task_id="sense",
        filepath="s3://landing/never/{{ run_id }}.csv",
        conn_id="moto_s3",
        poll=Constant(interval=2.0),
        timeout=10,
        soft_fail=True,
        source="e2e_object_soft",
    )

with DAG("wwo_timeout", schedule=None, start_date=START, catchup=False):
    FileArrivalSensor(
        task_id="sense",
        filepath="s3://landing/never/{{ run_id }}.csv",
        conn_id="moto_s3",
        poll=Constant(interval=2.0),
        timeout=8,
        retries=2,
        retry_delay=dt.timedelta(seconds=1),
    )

with DAG("wwo_dead", schedule=None, start_date=START, catchup=False, max_active_runs=1):
    FileArrivalSensor(
        task_id="sense",
        filepath="s3://landing/in/x.csv",
        conn_id="dead_s3",
        profile=FRAGILE,
        source="e2e_object_dead",
        soft_fail=True,
    )
