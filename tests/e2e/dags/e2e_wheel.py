"""The DAG tests/e2e/test_wheel.py runs where waitwise comes only from the built wheel.

It imports what a user's DAG would, and nothing from the checkout.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from waitwise.operators import FileArrivalSensor

with DAG(
    "ww_wheel", schedule=None, start_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC), catchup=False
):
    FileArrivalSensor(
        task_id="sense",
        filepath="{{ dag_run.conf['file'] }}",
        poke_interval=1,
        timeout=300,
    )
