"""DAGs for the SQL condition end-to-end tests (wiring only).

``warehouse`` and ``dead`` are connections defined in the environment by the test:
a real PostgreSQL, and the same driver pointed at a closed port.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from waitwise.operators.sql import SqlConditionSensor
from waitwise.triggers.breaker import BreakerConfig
from waitwise.triggers.policy import Constant, Exponential
from waitwise.triggers.profiles import ReliabilityProfile, RetryStrategy

START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
LANDED = "select count(*) from landed where day = %(day)s"

SCHEDULED = ReliabilityProfile(
    name="e2e_sql_schedule",
    arrival_window_s=5.0,
    reliability=0.9,
    timeout_s=14.0,
    poll=Exponential(initial=2.0, factor=2.0, cap=8.0),
    breaker=None,
)
FAILING = ReliabilityProfile(
    name="e2e_sql_failing",
    arrival_window_s=5.0,
    reliability=0.9,
    timeout_s=60.0,
    poll=Constant(interval=1.0),
    retry=RetryStrategy(
        probe_backoff=Exponential(initial=1.0, factor=2.0, cap=8.0), max_probe_errors=2
    ),
    breaker=BreakerConfig(failure_threshold=2, cooldown_s=600.0),
)

with DAG("ww_sql_arrival", schedule=None, start_date=START, catchup=False):
    SqlConditionSensor(
        task_id="sense",
        conn_id="warehouse",
        sql=LANDED,
        parameters={"day": "{{ dag_run.conf['day'] }}"},
        condition={"op": ">=", "value": 2},
        poll=Constant(interval=1.0),
        timeout=120,
        source="sql_arrival",
    )

with DAG("ww_sql_schedule", schedule=None, start_date=START, catchup=False):
    SqlConditionSensor(
        task_id="sense",
        conn_id="warehouse",
        sql=LANDED,
        parameters={"day": "1999-01-01"},
        profile=SCHEDULED,
        source="sql_schedule",
        soft_fail=True,
    )

with DAG("ww_sql_failing", schedule=None, start_date=START, catchup=False, max_active_runs=1):
    SqlConditionSensor(
        task_id="sense",
        conn_id="dead",
        sql=LANDED,
        parameters={"day": "{{ ds }}"},
        profile=FAILING,
        source="sql_dead",
    )
