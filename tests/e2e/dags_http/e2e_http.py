"""DAGs for the HTTP end-to-end test (wiring only): one behaviour each, one connection.

The ``ww_http`` connection comes from the environment (``AIRFLOW_CONN_WW_HTTP``), pointing at
the test's local server.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from waitwise.operators.http import HttpConditionSensor
from waitwise.triggers.breaker import BreakerConfig
from waitwise.triggers.policy import Constant, Exponential
from waitwise.triggers.profiles import ReliabilityProfile, RetryStrategy

START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
READY = {"path": "$.status", "op": "==", "value": "ready"}

FLAKY = ReliabilityProfile(
    name="e2e_http_flaky",
    arrival_window_s=30.0,
    reliability=0.9,
    timeout_s=60.0,
    poll=Constant(interval=1.0),
    retry=RetryStrategy(
        probe_backoff=Exponential(initial=1.0, factor=2.0, cap=8.0), max_probe_errors=2
    ),
    breaker=BreakerConfig(failure_threshold=1, cooldown_s=600.0),
)

with DAG("ww_http_arrival", schedule=None, start_date=START, catchup=False):
    HttpConditionSensor(
        task_id="sense",
        http_conn_id="ww_http",
        endpoint="arrival/{{ dag_run.conf['key'] }}",
        condition=READY,
        poll=Constant(interval=1.0),
        timeout=120,
    )

with DAG("ww_http_schedule", schedule=None, start_date=START, catchup=False):
    HttpConditionSensor(
        task_id="sense",
        http_conn_id="ww_http",
        endpoint="never/{{ dag_run.conf['key'] }}",
        poll=Exponential(initial=1.0, factor=2.0, cap=4.0),
        timeout=14,
        soft_fail=True,
    )

with DAG("ww_http_failing", schedule=None, start_date=START, catchup=False, max_active_runs=1):
    HttpConditionSensor(
        task_id="sense",
        http_conn_id="ww_http",
        endpoint="down",
        profile=FLAKY,
        source="e2e_http_down",
    )

with DAG("ww_http_auth", schedule=None, start_date=START, catchup=False):
    HttpConditionSensor(
        task_id="sense",
        http_conn_id="ww_http",
        endpoint="private",
        poll=Constant(interval=1.0),
        timeout=60,
    )
