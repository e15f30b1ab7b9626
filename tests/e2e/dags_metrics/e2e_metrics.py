"""The sensors of the metrics end-to-end test (tests/e2e/test_metrics.py): wiring only.

Two sources of two tiers: ``metrics_good`` (the ``high`` preset, shortened), whose file
lands, and ``metrics_late`` (the ``low`` preset, shortened, no re-open), whose file never
comes: it times out (skipped, ``soft_fail``).  The profiles keep their presets' names
because the monitoring report knows a profile's target and alert thresholds by name, and
only the presets' (``waitwise_monitoring.py`` beside this file is a link to the shipped
monitoring DAG).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from waitwise.operators.file import FileArrivalSensor
from waitwise.triggers.policy import Constant
from waitwise.triggers.profiles import (
    HIGH,
    LOW,
    AlertThresholds,
    OnDeadline,
    RetryStrategy,
)

FAST_HIGH = HIGH.override(
    arrival_window_s=2.0,
    timeout_s=30.0,
    poll=Constant(interval=1.0),
    alerts=AlertThresholds(min_success_rate=0.99, window=50),  # 5 min is past a 30 s wait
)
FAST_LOW = LOW.override(
    arrival_window_s=2.0,
    timeout_s=3.0,
    poll=Constant(interval=1.0),
    retry=RetryStrategy(on_deadline=OnDeadline.FAIL),  # no re-open 30 min later
)

with DAG(
    "ww_metrics_sensors",
    schedule=None,
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    catchup=False,
):
    FileArrivalSensor(
        task_id="arrives",
        filepath="metrics/good/{{ run_id }}.csv",
        profile=FAST_HIGH,
        source="metrics_good",
    )
    FileArrivalSensor(
        task_id="never",
        filepath="metrics/never/{{ run_id }}.csv",
        profile=FAST_LOW,
        source="metrics_late",
        soft_fail=True,
    )
